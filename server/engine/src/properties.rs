//! Property tests: invariants of the engine over random ledgers, messages and policies.

use assent_shared::domain::SubscriberKind;
use assent_shared::ledger::{
    Basis, Channel, ConsentMethod, EventKind, LedgerEvent, Message, MessageKind, Policy,
    PreferredChannel, Reason, Subject, Topic,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

use crate::{decide, sort_ledger, CompiledPolicy, Decision};

const TOPICS: &[&str] = &["boilers", "radiators", "holidays"];
const PARTIES: &[&str] = &["Harbour Mutual"];

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

fn channel() -> impl Strategy<Value = Channel> {
    prop_oneof![
        Just(Channel::Email),
        Just(Channel::Sms),
        Just(Channel::Phone),
        Just(Channel::AutomatedCall),
        Just(Channel::Post),
        Just(Channel::Fax),
    ]
}

fn scope_channel() -> impl Strategy<Value = Channel> {
    prop_oneof![3 => channel(), 1 => Just(Channel::Any)]
}

fn topic() -> impl Strategy<Value = Topic> {
    prop::sample::select(TOPICS).prop_map(Topic::from)
}

fn scope_topic() -> impl Strategy<Value = Topic> {
    prop_oneof![3 => topic(), 1 => Just(Topic::from("*"))]
}

fn method() -> impl Strategy<Value = ConsentMethod> {
    prop_oneof![
        Just(ConsentMethod::WebForm),
        Just(ConsentMethod::PaperForm),
        Just(ConsentMethod::EmailReply),
        Just(ConsentMethod::VerbalRecorded),
        Just(ConsentMethod::VerbalUnrecorded),
        Just(ConsentMethod::Imported),
    ]
}

fn preferred() -> impl Strategy<Value = PreferredChannel> {
    prop_oneof![
        Just(PreferredChannel::None),
        Just(PreferredChannel::Email),
        Just(PreferredChannel::Post)
    ]
}

fn kind() -> impl Strategy<Value = EventKind> {
    prop_oneof![
        4 => (scope_channel(), scope_topic(), method(), prop::bool::ANY).prop_map(|(channel, topic, method, named)| {
            EventKind::ConsentGiven {
                channel,
                topic,
                method,
                wording: "wording".into(),
                third_parties: if named { PARTIES.iter().map(|p| p.to_string()).collect() } else { vec![] },
            }
        }),
        2 => (scope_channel(), scope_topic()).prop_map(|(channel, topic)| EventKind::ConsentConfirmed { channel, topic }),
        3 => (scope_channel(), scope_topic()).prop_map(|(channel, topic)| EventKind::OptOut { channel, topic }),
        2 => (topic(), prop::bool::ANY).prop_map(|(topic, refusal_offered)| EventKind::Sale { topic, refusal_offered }),
        2 => (topic(), prop::bool::ANY).prop_map(|(topic, refusal_offered)| EventKind::Negotiation { topic, refusal_offered }),
        1 => topic().prop_map(|topic| EventKind::Enquiry { topic }),
        1 => (topic(), prop::bool::ANY).prop_map(|(topic, refusal_offered)| EventKind::Support { topic, refusal_offered }),
        2 => prop::bool::ANY.prop_map(|registered| EventKind::TpsCheck { registered }),
        1 => preferred().prop_map(|preferred_channel| EventKind::PreferenceSet { preferred_channel }),
        1 => Just(EventKind::Erased),
    ]
}

/// Events spread over about three years, on whole hours so that ties happen.
fn ledger() -> impl Strategy<Value = Vec<LedgerEvent>> {
    prop::collection::vec((0i64..26_000, kind()), 0..12).prop_map(|events| {
        let mut ledger: Vec<LedgerEvent> = events
            .into_iter()
            .enumerate()
            .map(|(i, (hours, kind))| LedgerEvent {
                id: Some(format!("e{i}")),
                at: base() + Duration::hours(hours),
                kind,
            })
            .collect();
        sort_ledger(&mut ledger);
        ledger
    })
}

fn message() -> impl Strategy<Value = Message> {
    (
        prop_oneof![5 => Just(MessageKind::Marketing), 1 => Just(MessageKind::Service)],
        channel(),
        topic(),
        prop::option::weighted(0.2, Just(PARTIES[0].to_owned())),
    )
        .prop_map(|(kind, channel, topic, third_party)| Message {
            kind,
            channel,
            topic: topic.to_string(),
            third_party,
        })
}

fn subject() -> impl Strategy<Value = Subject> {
    (
        prop_oneof![
            Just(SubscriberKind::Individual),
            Just(SubscriberKind::Corporate)
        ],
        prop::bool::ANY,
    )
        .prop_map(|(kind, named_person)| Subject { kind, named_person })
}

fn policy() -> impl Strategy<Value = CompiledPolicy> {
    (
        prop::bool::ANY,
        prop::bool::ANY,
        prop::bool::ANY,
        prop::option::of(30u32..800),
        prop::bool::ANY,
        prop::bool::ANY,
    )
        .prop_map(
            |(
                soft_opt_in,
                charity,
                similar,
                consent_max_age_days,
                accept_unrecorded,
                named_person_rule,
            )| {
                CompiledPolicy::new(Policy {
                    soft_opt_in,
                    charity,
                    consent_max_age_days,
                    accept_unrecorded_verbal_consent: accept_unrecorded,
                    corporate_named_person_requires_consent: named_person_rule,
                    similar_topics: if similar {
                        vec![vec!["boilers".into(), "radiators".into()]]
                    } else {
                        vec![]
                    },
                    ..Policy::default()
                })
            },
        )
}

fn now() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..28_000).prop_map(|hours| base() + Duration::hours(hours))
}

/// The positions of the ledger the engine reads at `now`: up to `now`, from the last erasure's
/// comeback on (empty while suppressed).
fn live(ledger: &[LedgerEvent], now: DateTime<Utc>) -> std::ops::Range<usize> {
    let end = ledger.partition_point(|e| e.at <= now);
    let start = match ledger[..end].iter().rposition(|e| e.kind == EventKind::Erased) {
        None => 0,
        Some(erased) => ledger[erased + 1..end]
            .iter()
            .position(|e| matches!(e.kind, EventKind::ConsentGiven { method, .. } if method != ConsentMethod::Imported))
            .map_or(end, |offset| erased + 1 + offset),
    };
    start..end
}

fn covers_opt_out(event: &LedgerEvent, message: &Message) -> bool {
    matches!(&event.kind, EventKind::OptOut { channel, topic } if channel.covers(message.channel) && assent_shared::ledger::topic_covers(topic, &message.topic))
}

fn has_objection(decision: &Decision) -> bool {
    [Reason::Suppressed, Reason::OptedOut, Reason::PreferenceNone]
        .iter()
        .any(|r| decision.reasons.contains(*r))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn suppression_denies_everything(policy in policy(), subject in subject(), mut ledger in ledger(), message in message(), now in now()) {
        ledger.push(LedgerEvent { id: Some("erasure".into()), at: now, kind: EventKind::Erased });
        sort_ledger(&mut ledger);
        let decision = decide(&policy, &subject, &ledger, &message, now);
        prop_assert!(!decision.allowed);
        prop_assert_eq!(decision.reasons.iter().collect::<Vec<_>>(), vec![Reason::Suppressed]);
    }

    #[test]
    fn no_marketing_after_an_opt_out_without_a_later_valid_covering_consent(
        policy in policy(), subject in subject(), ledger in ledger(), message in message(), now in now()
    ) {
        let decision = decide(&policy, &subject, &ledger, &message, now);
        let live = live(&ledger, now);
        if decision.allowed && message.kind == MessageKind::Marketing {
            if let Some(opt_out) = live.clone().rev().find(|&i| covers_opt_out(&ledger[i], &message)) {
                prop_assert_eq!(decision.basis, Some(Basis::Consent));
                let consent = decision.evidence.as_slice()[0] as usize;
                prop_assert!(consent > opt_out, "the cited consent came after the opt-out");
            }
        }
    }

    #[test]
    fn no_email_or_sms_marketing_to_an_individual_without_consent_or_soft_opt_in(
        policy in policy(), ledger in ledger(), message in message(), now in now()
    ) {
        let subject = Subject { kind: SubscriberKind::Individual, named_person: true };
        let decision = decide(&policy, &subject, &ledger, &message, now);
        if decision.allowed && message.kind == MessageKind::Marketing && matches!(message.channel, Channel::Email | Channel::Sms) {
            prop_assert!(matches!(decision.basis, Some(Basis::Consent | Basis::SoftOptIn)), "{:?}", decision);
        }
    }

    #[test]
    fn appending_an_opt_out_never_turns_a_denial_into_an_allowance(
        policy in policy(), subject in subject(), ledger in ledger(), message in message(), now in now(),
        channel in scope_channel(), topic in scope_topic(), hours in 0i64..28_000
    ) {
        let before = decide(&policy, &subject, &ledger, &message, now);
        let mut after_ledger = ledger.clone();
        after_ledger.push(LedgerEvent { id: Some("new-opt-out".into()), at: base() + Duration::hours(hours), kind: EventKind::OptOut { channel, topic } });
        sort_ledger(&mut after_ledger);
        let after = decide(&policy, &subject, &after_ledger, &message, now);
        prop_assert!(before.allowed || !after.allowed);
    }

    #[test]
    fn a_decision_never_cites_an_event_after_now(
        policy in policy(), subject in subject(), ledger in ledger(), message in message(), now in now()
    ) {
        let decision = decide(&policy, &subject, &ledger, &message, now);
        for &i in decision.evidence.as_slice() {
            prop_assert!(ledger[i as usize].at <= now);
        }
    }

    /// Merging a duplicate's ledger (the union of both) never loses an objection: where a ledger
    /// is denied for an opt-out, an erasure or a preference of none, the merged one is denied too
    /// unless the other brings what lawfully lifts it (a new consent, its confirmation, a new
    /// preference, or an erasure after which the person came back), which this test leaves out
    /// of the other ledger.
    #[test]
    fn the_union_of_two_ledgers_keeps_every_objection(
        policy in policy(), subject in subject(), first in ledger(), second in ledger(), message in message(), now in now()
    ) {
        let lifts = |e: &LedgerEvent| {
            matches!(
                e.kind,
                EventKind::ConsentGiven { .. } | EventKind::ConsentConfirmed { .. } | EventKind::PreferenceSet { .. } | EventKind::Erased
            )
        };
        let mut union: Vec<LedgerEvent> = first.iter().cloned().chain(second.into_iter().filter(|e| !lifts(e))).collect();
        sort_ledger(&mut union);
        let merged = decide(&policy, &subject, &union, &message, now);
        if has_objection(&decide(&policy, &subject, &first, &message, now)) {
            prop_assert!(!merged.allowed, "an objection was lost in the merge: {:?}", merged);
        }
    }
}
