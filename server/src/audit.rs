//! The audit trail: who did what to which object, when, from which session — as ids only.
//!
//! Records are hash-chained ([`crate::chain`]): altering, removing or reordering any record breaks
//! every link after it. The chain is verified by `assent-server audit verify`.
//!
//! Architecture invariant: an audit record holds ids, action names and outcomes, never personal
//! data (no names, emails, phone numbers, search terms or tokens).

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use crate::chain::{hash_fields, ChainVerifier};

/// Declares a closed set of names that are part of the hashed record: each variant's text is
/// stable, and a stored text that is not one of them is not a name of the set.
macro_rules! audit_names {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = ();
            fn from_str(text: &str) -> Result<Self, ()> {
                match text { $($text => Ok($name::$variant),)+ _ => Err(()) }
            }
        }
    };
}

audit_names! {
    /// What happened.
    Action {
        LoginSucceeded => "login_succeeded",
        LoginFailed => "login_failed",
        LoginThrottled => "login_throttled",
        Logout => "logout",
        SessionsListed => "sessions_listed",
        SessionRevoked => "session_revoked",
        PasswordChanged => "password_changed",
        UserCreated => "user_created",
        UserRead => "user_read",
        UserUpdated => "user_updated",
        UsersListed => "users_listed",
        CompanyCreated => "company_created",
        CompanyRead => "company_read",
        CompanyListed => "company_listed",
        CompanyUpdated => "company_updated",
        CompanyDeactivated => "company_deactivated",
        CompanyHistoryRead => "company_history_read",
        ContactCreated => "contact_created",
        /// A batch of synthetic contacts created by `assent-server seed` (one record a batch).
        ContactsSeeded => "contacts_seeded",
        ContactRead => "contact_read",
        ContactListed => "contact_listed",
        ContactUpdated => "contact_updated",
        ContactDeactivated => "contact_deactivated",
        ContactHistoryRead => "contact_history_read",
        LedgerRead => "ledger_read",
        LedgerEventRecorded => "ledger_event_recorded",
        LedgerExported => "ledger_exported",
        LedgerImported => "ledger_imported",
        DecisionMade => "decision_made",
        EvidencePackGenerated => "evidence_pack_generated",
        PolicyChanged => "policy_changed",
        FilterSaved => "filter_saved",
        FiltersListed => "filters_listed",
        /// A request refused for want of a valid session (401).
        Unauthenticated => "unauthenticated",
        /// A request refused for want of a role or of rights over the object (403).
        Denied => "denied",
    }
}

audit_names! {
    /// The kind of object an audit record is about.
    ObjectKind {
        User => "user",
        Session => "session",
        Company => "company",
        Contact => "contact",
        SavedFilter => "saved_filter",
    }
}

audit_names! {
    /// How it ended: `ok`, or why it was refused.
    Outcome {
        Ok => "ok",
        /// 403: the role or the rights over the object are missing.
        Forbidden => "forbidden",
        /// 401: no valid session.
        Refused => "refused",
        Throttled => "throttled",
        UnknownAccount => "unknown_account",
        Deactivated => "deactivated",
        BadPassword => "bad_password",
    }
}

/// One audit record before it is chained: every field is an id, a time or one of the names
/// above, so no free text (and so no personal data) can reach the trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub action: Action,
    pub object: Option<(ObjectKind, Uuid)>,
    pub outcome: Outcome,
}

impl AuditRecord {
    /// A record of `action`, now, by nobody in particular (the caller says who with [`Self::by`]).
    pub fn new(action: Action, outcome: Outcome) -> Self {
        AuditRecord {
            at: crate::clock::now(),
            actor_id: None,
            session_id: None,
            action,
            object: None,
            outcome,
        }
    }

    pub fn by(mut self, actor_id: Option<Uuid>, session_id: Option<Uuid>) -> Self {
        self.actor_id = actor_id;
        self.session_id = session_id;
        self
    }

    pub fn on(mut self, kind: ObjectKind, id: Uuid) -> Self {
        self.object = Some((kind, id));
        self
    }

    /// The record's hash as the `seq`-th link after `prev_hash`.
    pub fn chain_hash(&self, seq: i64, prev_hash: &str) -> String {
        link_hash(
            seq,
            self.at,
            self.actor_id,
            self.session_id,
            self.action.as_str(),
            self.object.map(|(kind, _)| kind.as_str()),
            self.object.map(|(_, id)| id),
            self.outcome.as_str(),
            prev_hash,
        )
    }
}

/// The hash of one audit link. The format is fixed: every record ever written is verified by it.
#[allow(clippy::too_many_arguments)]
fn link_hash(
    seq: i64,
    at: DateTime<Utc>,
    actor_id: Option<Uuid>,
    session_id: Option<Uuid>,
    action: &str,
    object_kind: Option<&str>,
    object_id: Option<Uuid>,
    outcome: &str,
    prev_hash: &str,
) -> String {
    let id = |value: Option<Uuid>| value.map(|v| v.to_string()).unwrap_or_default();
    hash_fields(&[
        &seq.to_string(),
        &at.to_rfc3339_opts(SecondsFormat::Micros, true),
        &id(actor_id),
        &id(session_id),
        action,
        object_kind.unwrap_or_default(),
        &id(object_id),
        outcome,
        prev_hash,
    ])
}

/// A record as stored, with its place in the chain and its hashes. Its names are kept as the text
/// found, so that a record altered outside Assent is still read, hashed and named as broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub action: String,
    pub object_kind: Option<String>,
    pub object_id: Option<Uuid>,
    pub outcome: String,
    pub prev_hash: String,
    pub hash: String,
}

impl StoredRecord {
    /// Checks this record as the next link of `verifier`'s chain.
    pub fn check(&self, verifier: &mut ChainVerifier) {
        let recomputed = link_hash(
            self.seq,
            self.at,
            self.actor_id,
            self.session_id,
            &self.action,
            self.object_kind.as_deref(),
            self.object_id,
            &self.outcome,
            &self.prev_hash,
        );
        verifier.check_link(self.seq, &self.prev_hash, &self.hash, &recomputed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{BrokenLink, GENESIS_HASH};

    fn chain(n: i64) -> Vec<StoredRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let id = Uuid::now_v7();
                let record =
                    AuditRecord::new(Action::ContactRead, Outcome::Ok).on(ObjectKind::Contact, id);
                let hash = record.chain_hash(seq, &prev);
                let stored = StoredRecord {
                    seq,
                    at: record.at,
                    actor_id: None,
                    session_id: None,
                    action: record.action.as_str().to_owned(),
                    object_kind: Some("contact".to_owned()),
                    object_id: Some(id),
                    outcome: "ok".to_owned(),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                stored
            })
            .collect()
    }

    fn verify(records: &[StoredRecord], head_seq: i64, head_hash: &str) -> Result<u64, BrokenLink> {
        let mut verifier = ChainVerifier::default();
        records.iter().for_each(|r| r.check(&mut verifier));
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
        records[2].action = "contact_updated".into();
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

    #[test]
    fn every_name_reads_back_as_itself() {
        for action in Action::ALL {
            assert_eq!(action.as_str().parse::<Action>(), Ok(*action));
        }
        for kind in ObjectKind::ALL {
            assert_eq!(kind.as_str().parse::<ObjectKind>(), Ok(*kind));
        }
        for outcome in Outcome::ALL {
            assert_eq!(outcome.as_str().parse::<Outcome>(), Ok(*outcome));
        }
        assert!("Jane Doe".parse::<Outcome>().is_err());
    }
}
