//! The audit trail: who did what to which objects, when, proved by which session or token — as
//! ids only.
//!
//! Records are hash-chained ([`crate::chain`]): altering, removing or reordering any record breaks
//! every link after it. The trail is many chains (format 2): a writer appends to whichever chain
//! no other writer holds, so writers do not queue behind one head; each chain starts from the
//! head of the single chain written before format 2, which is closed and verified as it was
//! written. The chains are verified by `assent-server audit verify`.
//!
//! Architecture invariant: an audit record holds ids, action names and outcomes, never personal
//! data (no names, emails, phone numbers, search terms or tokens).

use assent_shared::api::ActorRef;
use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use crate::chain::{hash_fields, ChainVerifier};
use crate::store::actor_columns;

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
        TopicsChanged => "topics_changed",
        CampaignCreated => "campaign_created",
        CampaignUpdated => "campaign_updated",
        CampaignSubmitted => "campaign_submitted",
        CampaignApproved => "campaign_approved",
        /// A service message approved as its author submitted it, as the policy allows.
        CampaignApprovedByPolicy => "campaign_approved_by_policy",
        CampaignRejected => "campaign_rejected",
        CampaignCancelled => "campaign_cancelled",
        CampaignSendStarted => "campaign_send_started",
        CampaignPaused => "campaign_paused",
        CampaignResumed => "campaign_resumed",
        /// The send worker decided recipients again and wrote their warrants (one record a batch).
        RecipientsDecided => "recipients_decided",
        CampaignSent => "campaign_sent",
        /// A campaign sent as one of its recipients would get it to its author's own address.
        CampaignTestSent => "campaign_test_sent",
        /// The list of a campaign's indeterminate recipients read (names and addresses).
        IndeterminateRead => "indeterminate_read",
        /// The explicit choice to send indeterminate recipients their message again.
        IndeterminateResent => "indeterminate_resent",
        /// A contact's communication log (their warrants) read.
        CommunicationsRead => "communications_read",
        /// A call, letter or fax staff made, logged on the contact with its warrant.
        CommunicationLogged => "communication_logged",
        /// A person stopped messages through their unsubscribe link or mailbox.
        Unsubscribed => "unsubscribed",
        /// A person changed their choices in the preference centre.
        PreferencesChanged => "preferences_changed",
        /// A sign-up form published, with its standing confirmation campaign.
        SignupFormPublished => "signup_form_published",
        SignupFormRetired => "signup_form_retired",
        /// A person signed up through a form: consents given, a confirmation queued.
        SignedUp => "signed_up",
        /// A person pressed the button of their confirmation link.
        SignupConfirmed => "signup_confirmed",
        /// A person asked for a fresh confirmation link in place of an expired one.
        SignupLinkResent => "signup_link_resent",
        /// The data request page published, with its standing verification campaign.
        DataRequestPagePublished => "data_request_page_published",
        /// A person asked for their data (access, correction or erasure) on the public page.
        DataRequestReceived => "data_request_received",
        /// A person pressed the button of the link that verifies their request's address.
        DataRequestVerified => "data_request_verified",
        DataRequestsListed => "data_requests_listed",
        /// An address of a contact was found to bounce and is no longer used.
        AddressFlagged => "address_flagged",
        /// A complaint about a message (a feedback report) recorded as the person's opt-out.
        ComplaintRecorded => "complaint_recorded",
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
        Campaign => "campaign",
        SignupForm => "signup_form",
        DataRequest => "data_request",
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
/// above, so no free text (and so no personal data) can reach the trail. One request makes one
/// record, naming every object it showed or changed (a list page names each contact on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    /// Who acted; `None` for a caller nobody knows (a request with no valid session).
    pub actor: Option<ActorRef>,
    /// What proved who they were: a member of staff's session, a data subject's token.
    pub via: Option<Uuid>,
    pub action: Action,
    pub objects: Vec<(ObjectKind, Uuid)>,
    pub outcome: Outcome,
    /// A window's tally of refusals from callers nobody knows: how many more of this action and
    /// outcome the window before `at` saw beyond those recorded one by one. `None`: one event.
    pub tally: Option<i64>,
}

impl AuditRecord {
    /// A record of `action`, now, by nobody in particular (the caller says who with [`Self::by`]).
    pub fn new(action: Action, outcome: Outcome) -> Self {
        AuditRecord {
            at: crate::clock::now(),
            actor: None,
            via: None,
            action,
            objects: Vec::new(),
            outcome,
            tally: None,
        }
    }

    /// As a tally of `count` refusals like it (see [`AuditRecord::tally`]).
    pub fn tallied(mut self, count: i64) -> Self {
        self.tally = Some(count);
        self
    }

    /// By `actor`, proved by `via` (a session or a token).
    pub fn by(mut self, actor: Option<ActorRef>, via: Option<Uuid>) -> Self {
        self.actor = actor;
        self.via = via;
        self
    }

    /// About object `id` of `kind` (as well as any named before).
    pub fn on(mut self, kind: ObjectKind, id: Uuid) -> Self {
        self.objects.push((kind, id));
        self
    }

    /// About each of `ids`, objects of `kind`.
    pub fn on_each(mut self, kind: ObjectKind, ids: impl IntoIterator<Item = Uuid>) -> Self {
        self.objects.extend(ids.into_iter().map(|id| (kind, id)));
        self
    }

    /// The record's hash as link `seq` of chain `chain`, after `prev_hash`.
    pub fn chain_hash(&self, chain: i32, seq: i64, prev_hash: &str) -> String {
        let (actor_kind, actor_id) = match self.actor {
            Some(actor) => {
                let (kind, id) = actor_columns::encode(actor);
                (Some(kind), Some(id))
            }
            None => (None, None),
        };
        let objects: Vec<(&str, Uuid)> = self
            .objects
            .iter()
            .map(|(kind, id)| (kind.as_str(), *id))
            .collect();
        link_hash(&Link {
            chain,
            seq,
            at: self.at,
            actor_kind,
            actor_id,
            via: self.via,
            action: self.action.as_str(),
            outcome: self.outcome.as_str(),
            objects: &objects,
            tally: self.tally,
            prev_hash,
        })
    }
}

/// The fields of one link of the trail as they are hashed.
struct Link<'a> {
    chain: i32,
    seq: i64,
    at: DateTime<Utc>,
    actor_kind: Option<&'a str>,
    actor_id: Option<Uuid>,
    via: Option<Uuid>,
    action: &'a str,
    outcome: &'a str,
    objects: &'a [(&'a str, Uuid)],
    tally: Option<i64>,
    prev_hash: &'a str,
}

/// The hash of one link, format 2. The format is fixed: every record ever written is verified by
/// it. The number of objects comes before them, so no two records hash the same fields. A tally
/// (migration 0009) is hashed after the objects as `tally` and its count; a record without one
/// hashes exactly as the format-2 records written before tallies existed.
fn link_hash(link: &Link<'_>) -> String {
    let id = |value: Option<Uuid>| value.map(|v| v.to_string()).unwrap_or_default();
    let mut fields = vec![
        FORMAT.to_string(),
        link.chain.to_string(),
        link.seq.to_string(),
        link.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        link.actor_kind.unwrap_or_default().to_owned(),
        id(link.actor_id),
        id(link.via),
        link.action.to_owned(),
        link.outcome.to_owned(),
        link.objects.len().to_string(),
    ];
    for (kind, object) in link.objects {
        fields.push((*kind).to_owned());
        fields.push(object.to_string());
    }
    if let Some(count) = link.tally {
        fields.push("tally".to_owned());
        fields.push(count.to_string());
    }
    fields.push(link.prev_hash.to_owned());
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    hash_fields(&fields)
}

/// The format of the records written now: 2, many chains, the actor's kind, a set of objects.
pub const FORMAT: i32 = 2;

/// Where chain `chain` starts: a hash of its number and of the head of the trail written before
/// format 2 (the genesis hash when there was none), so each chain extends the closed one.
pub fn genesis(chain: i32, legacy_head_hash: &str) -> String {
    hash_fields(&["audit chain", &chain.to_string(), legacy_head_hash])
}

/// A record as stored, with its place in its chain and its hashes. Its names are kept as the text
/// found, so that a record altered outside Assent is still read, hashed and named as broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub chain: i32,
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor_kind: Option<String>,
    pub actor_id: Option<Uuid>,
    pub via: Option<Uuid>,
    pub action: String,
    pub outcome: String,
    /// How many objects the record says it names, and those found.
    pub object_count: i64,
    pub objects: Vec<(String, Uuid)>,
    pub tally: Option<i64>,
    pub prev_hash: String,
    pub hash: String,
}

impl StoredRecord {
    /// The hash this record's contents and link give (its stored `hash`, unless it was altered).
    pub fn contents_hash(&self) -> String {
        let objects: Vec<(&str, Uuid)> = self
            .objects
            .iter()
            .map(|(kind, id)| (kind.as_str(), *id))
            .collect();
        link_hash(&Link {
            chain: self.chain,
            seq: self.seq,
            at: self.at,
            actor_kind: self.actor_kind.as_deref(),
            actor_id: self.actor_id,
            via: self.via,
            action: &self.action,
            outcome: &self.outcome,
            objects: &objects,
            tally: self.tally,
            prev_hash: &self.prev_hash,
        })
    }

    /// Checks this record as the next link of `verifier`'s chain.
    pub fn check(&self, verifier: &mut ChainVerifier) {
        if self.object_count != self.objects.len() as i64 {
            let problem = format!(
                "it names {} objects but {} are stored (objects were removed or added)",
                self.object_count,
                self.objects.len()
            );
            verifier.fail(self.seq, problem);
            return;
        }
        let recomputed = self.contents_hash();
        verifier.check_link(self.seq, &self.prev_hash, &self.hash, &recomputed);
    }
}

/// A record of the trail as written before format 2: one chain, one object, the actor a user.
/// The trail of that format is closed (nothing is appended to it) and verified as it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyRecord {
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

impl LegacyRecord {
    /// Checks this record as the next link of `verifier`'s chain, by the hash of format 1.
    pub fn check(&self, verifier: &mut ChainVerifier) {
        let id = |value: Option<Uuid>| value.map(|v| v.to_string()).unwrap_or_default();
        let recomputed = hash_fields(&[
            &self.seq.to_string(),
            &self.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            &id(self.actor_id),
            &id(self.session_id),
            &self.action,
            self.object_kind.as_deref().unwrap_or_default(),
            &id(self.object_id),
            &self.outcome,
            &self.prev_hash,
        ]);
        verifier.check_link(self.seq, &self.prev_hash, &self.hash, &recomputed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{BrokenLink, GENESIS_HASH};

    fn id(n: u128) -> Uuid {
        Uuid::parse_str(&format!("0190a0b0-0000-7000-8000-{n:012}")).unwrap()
    }

    fn at() -> DateTime<Utc> {
        "2026-12-01T09:30:00Z".parse().unwrap()
    }

    fn stored(record: &AuditRecord, chain: i32, seq: i64, prev: &str) -> StoredRecord {
        let (actor_kind, actor_id) = match record.actor {
            Some(actor) => {
                let (kind, id) = actor_columns::encode(actor);
                (Some(kind.to_owned()), Some(id))
            }
            None => (None, None),
        };
        StoredRecord {
            chain,
            seq,
            at: record.at,
            actor_kind,
            actor_id,
            via: record.via,
            action: record.action.as_str().to_owned(),
            outcome: record.outcome.as_str().to_owned(),
            object_count: record.objects.len() as i64,
            objects: record
                .objects
                .iter()
                .map(|(kind, id)| (kind.as_str().to_owned(), *id))
                .collect(),
            tally: record.tally,
            prev_hash: prev.to_owned(),
            hash: record.chain_hash(chain, seq, prev),
        }
    }

    fn chain(n: i64) -> Vec<StoredRecord> {
        let mut prev = genesis(1, GENESIS_HASH);
        (1..=n)
            .map(|seq| {
                let record = AuditRecord::new(Action::ContactListed, Outcome::Ok)
                    .by(Some(ActorRef::Staff { id: id(1) }), Some(id(2)))
                    .on_each(ObjectKind::Contact, [Uuid::now_v7(), Uuid::now_v7()]);
                let stored = stored(&record, 1, seq, &prev);
                prev = stored.hash.clone();
                stored
            })
            .collect()
    }

    fn verify(records: &[StoredRecord], head_seq: i64, head_hash: &str) -> Result<u64, BrokenLink> {
        let mut verifier = ChainVerifier::from_genesis(&genesis(1, GENESIS_HASH));
        records.iter().for_each(|r| r.check(&mut verifier));
        verifier.finish(head_seq, head_hash)
    }

    /// The hashes of both formats are fixed: these were computed apart from this code (SHA-256
    /// of the fields joined by U+001F), and every record ever written is verified by them.
    #[test]
    fn both_formats_hash_as_they_always_have() {
        let genesis_1 = genesis(1, GENESIS_HASH);
        assert_eq!(
            genesis_1,
            "a407c3838ed088e0b25994df1566f3412030ae202aa570f51d0650a017b9dec5"
        );
        let mut record = AuditRecord::new(Action::ContactListed, Outcome::Ok)
            .by(Some(ActorRef::Staff { id: id(1) }), Some(id(2)))
            .on_each(ObjectKind::Contact, [id(3), id(4)]);
        record.at = at();
        assert_eq!(
            record.chain_hash(1, 1, &genesis_1),
            "f3ad024fc62d94ad35af7b06f5bbcd4331448be88094e48bb93ff43daf469f86"
        );
        let legacy = LegacyRecord {
            seq: 1,
            at: at(),
            actor_id: Some(id(1)),
            session_id: Some(id(2)),
            action: "contact_read".into(),
            object_kind: Some("contact".into()),
            object_id: Some(id(3)),
            outcome: "ok".into(),
            prev_hash: GENESIS_HASH.into(),
            hash: "2a3533f100c73fa023fbb8336d24e94e62b9aa92566f2783f8fb424a6d5687f6".into(),
        };
        let mut verifier = ChainVerifier::default();
        legacy.check(&mut verifier);
        assert_eq!(verifier.finish(1, &legacy.hash), Ok(1));
    }

    #[test]
    fn the_actor_kind_and_every_object_are_part_of_the_hash() {
        let base = AuditRecord::new(Action::ContactRead, Outcome::Ok)
            .by(Some(ActorRef::Staff { id: id(1) }), None)
            .on(ObjectKind::Contact, id(3));
        let hash = base.chain_hash(1, 1, GENESIS_HASH);
        let as_subject = AuditRecord {
            actor: Some(ActorRef::DataSubject { id: id(1) }),
            ..base.clone()
        };
        assert_ne!(as_subject.chain_hash(1, 1, GENESIS_HASH), hash);
        let more = base.clone().on(ObjectKind::Contact, id(4));
        assert_ne!(more.chain_hash(1, 1, GENESIS_HASH), hash);
        assert_ne!(base.chain_hash(2, 1, GENESIS_HASH), hash, "the chain too");
    }

    #[test]
    fn a_tally_is_part_of_the_hash_and_a_record_without_one_hashes_as_before() {
        let one = AuditRecord::new(Action::Unauthenticated, Outcome::Refused);
        let hash = one.chain_hash(1, 1, GENESIS_HASH);
        assert_ne!(one.clone().tallied(20).chain_hash(1, 1, GENESIS_HASH), hash);
        assert_ne!(
            one.clone().tallied(20).chain_hash(1, 1, GENESIS_HASH),
            one.clone().tallied(21).chain_hash(1, 1, GENESIS_HASH)
        );
    }

    #[test]
    fn an_intact_chain_verifies() {
        let records = chain(5);
        assert_eq!(verify(&records, 5, &records[4].hash), Ok(5));
        assert_eq!(verify(&[], 0, &genesis(1, GENESIS_HASH)), Ok(0));
    }

    #[test]
    fn an_altered_record_is_named() {
        let mut records = chain(5);
        records[2].action = "contact_updated".into();
        let head = records[4].hash.clone();
        assert_eq!(verify(&records, 5, &head).unwrap_err().seq, 3);
    }

    #[test]
    fn a_removed_or_altered_object_is_named() {
        let mut records = chain(5);
        records[1].objects.pop();
        let head = records[4].hash.clone();
        let broken = verify(&records, 5, &head).unwrap_err();
        assert_eq!(broken.seq, 2);
        assert!(
            broken.problem.contains("names 2 objects but 1 are stored"),
            "{}",
            broken.problem
        );

        let mut records = chain(5);
        records[3].objects[0].1 = Uuid::now_v7();
        let head = records[4].hash.clone();
        assert_eq!(verify(&records, 5, &head).unwrap_err().seq, 4);
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
