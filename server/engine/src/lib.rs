//! The decision engine: may we send this message to this person now, on what basis, citing which
//! ledger events, and if not, why not. It follows ../shared/compliance/SCENARIOS.md.
//!
//! Architecture invariant: the engine is a pure function of (policy, subject, ledger, message,
//! now). It reads no clock, no database and no file, so a decision can be recomputed "as of" any
//! moment and by anyone, and it is fast enough to run over a whole audience.

pub mod compact;
pub mod explain;
#[cfg(test)]
mod properties;
pub mod scenario;
pub mod synthetic;

use std::collections::HashMap;

use assent_shared::domain::SubscriberKind;
use assent_shared::ledger::{
    topic_covers, Basis, Channel, ConsentMethod, EventKind, LedgerEvent, Message, MessageKind,
    Policy, PreferredChannel, Reason, Subject,
};
use chrono::{DateTime, Duration, TimeZone, Utc};

/// The charitable-purpose soft opt-in (PECR reg 22(3A)) is in force from this moment; it does not
/// reach back to support given before it.
pub fn charity_soft_opt_in_in_force() -> DateTime<Utc> {
    // A fixed, valid date: `single()` cannot be None.
    Utc.with_ymd_and_hms(2026, 2, 5, 0, 0, 0)
        .single()
        .expect("a valid date")
}

/// A policy prepared for fast decisions: topic groups indexed, windows as durations.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    pub policy: Policy,
    groups: HashMap<String, Vec<u32>>,
    soft_opt_in_window: Option<Duration>,
    consent_window: Option<Duration>,
    tps_window: Option<Duration>,
    charity_from: DateTime<Utc>,
}

impl CompiledPolicy {
    pub fn new(policy: Policy) -> Self {
        let mut groups: HashMap<String, Vec<u32>> = HashMap::new();
        for (index, group) in policy.similar_topics.iter().enumerate() {
            for topic in group {
                groups.entry(topic.clone()).or_default().push(index as u32);
            }
        }
        let days = |d: Option<u32>| d.map(|d| Duration::days(i64::from(d)));
        CompiledPolicy {
            soft_opt_in_window: days(policy.soft_opt_in_max_age_days),
            consent_window: days(policy.consent_max_age_days),
            tps_window: days(policy.tps_check_max_age_days),
            groups,
            policy,
            charity_from: charity_soft_opt_in_in_force(),
        }
    }

    /// Topics are similar when equal or listed together in one group (similarity does not chain).
    pub fn similar(&self, a: &str, b: &str) -> bool {
        if a == b {
            return true;
        }
        if self.groups.is_empty() {
            return false;
        }
        match (self.groups.get(a), self.groups.get(b)) {
            (Some(ga), Some(gb)) => ga.iter().any(|g| gb.contains(g)),
            _ => false,
        }
    }

    fn needs_confirmation(&self, method: ConsentMethod) -> bool {
        self.policy.double_opt_in_methods.contains(&method)
    }
}

impl Default for CompiledPolicy {
    fn default() -> Self {
        CompiledPolicy::new(Policy::default())
    }
}

/// A set of reasons, in the order of [`Reason::ALL`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReasonSet(u16);

impl ReasonSet {
    fn bit(reason: Reason) -> u16 {
        1 << (reason as u16)
    }

    pub fn insert(&mut self, reason: Reason) {
        self.0 |= Self::bit(reason);
    }

    pub fn contains(&self, reason: Reason) -> bool {
        self.0 & Self::bit(reason) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = Reason> + '_ {
        Reason::ALL.iter().copied().filter(|r| self.contains(*r))
    }

    fn union(&mut self, other: ReasonSet) {
        self.0 |= other.0;
    }
}

/// The ledger events a decision rests on, as positions in the ledger it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evidence {
    items: [u32; 6],
    len: u8,
}

impl Evidence {
    pub fn push(&mut self, index: usize) {
        let index = index as u32;
        if !self.as_slice().contains(&index) && (self.len as usize) < self.items.len() {
            self.items[self.len as usize] = index;
            self.len += 1;
        }
    }

    pub fn as_slice(&self) -> &[u32] {
        &self.items[..self.len as usize]
    }

    fn extend(&mut self, other: &Evidence) {
        for &i in other.as_slice() {
            self.push(i as usize);
        }
    }
}

/// The answer: allowed or not, on what basis, why not, and the events it rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Set when allowed.
    pub basis: Option<Basis>,
    /// Set when not allowed: every reason that applies.
    pub reasons: ReasonSet,
    /// Positions in the ledger given to [`decide`].
    pub evidence: Evidence,
}

impl Decision {
    fn allow(basis: Basis, evidence: Evidence) -> Self {
        Decision {
            allowed: true,
            basis: Some(basis),
            reasons: ReasonSet::default(),
            evidence,
        }
    }

    fn deny(reasons: ReasonSet, evidence: Evidence) -> Self {
        Decision {
            allowed: false,
            basis: None,
            reasons,
            evidence,
        }
    }
}

fn within(window: Option<Duration>, at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    window.is_none_or(|w| now - at <= w)
}

/// What one scan of the ledger found about the message: the consents covering it, and the
/// latest covering opt-out, preference and TPS screen.
#[derive(Default)]
struct Consents {
    latest_opt_out: Option<usize>,
    latest_preference: Option<(usize, PreferredChannel)>,
    latest_screen: Option<(usize, bool, DateTime<Utc>)>,
    /// Some covering consent exists, valid or not.
    any_covering: bool,
    /// The latest valid covering consent and the confirmation it needed, if any.
    latest_valid: Option<(usize, Option<usize>)>,
    /// The reasons of covering consents that are not valid.
    invalid_reasons: ReasonSet,
}

/// Decides whether `message` may be sent to `subject` at `now`, given the `ledger` sorted by time
/// (ties in recorded order). Events after `now` are ignored.
pub fn decide(
    policy: &CompiledPolicy,
    subject: &Subject,
    ledger: &[LedgerEvent],
    message: &Message,
    now: DateTime<Utc>,
) -> Decision {
    let end = ledger.partition_point(|e| e.at <= now);
    let events = &ledger[..end];

    // Erasure suppresses everything before it; only the person coming back by themselves (a
    // consent not imported) starts a fresh ledger, which begins at that consent.
    let mut start = 0;
    if let Some(erased) = events
        .iter()
        .rposition(|e| matches!(e.kind, EventKind::Erased))
    {
        let comeback = events[erased + 1..].iter().position(|e| {
            matches!(e.kind, EventKind::ConsentGiven { method, .. } if method != ConsentMethod::Imported)
        });
        match comeback {
            Some(offset) => start = erased + 1 + offset,
            None => {
                let mut reasons = ReasonSet::default();
                reasons.insert(Reason::Suppressed);
                let mut evidence = Evidence::default();
                evidence.push(erased);
                return Decision::deny(reasons, evidence);
            }
        }
    }

    if message.kind == MessageKind::Service {
        return Decision::allow(Basis::Service, Evidence::default());
    }

    let consents = scan(policy, events, start, message, now);
    let latest_opt_out = consents.latest_opt_out;
    let latest_preference = consents.latest_preference;
    let latest_screen = consents.latest_screen;

    // Objections first: they deny marketing on every channel.
    let mut reasons = ReasonSet::default();
    let mut evidence = Evidence::default();
    if let Some(opt_out) = latest_opt_out {
        if consents
            .latest_valid
            .is_none_or(|(consent, _)| opt_out > consent)
        {
            reasons.insert(Reason::OptedOut);
            evidence.push(opt_out);
        }
    }
    if let Some((i, PreferredChannel::None)) = latest_preference {
        if policy.policy.honour_preference_none {
            reasons.insert(Reason::PreferenceNone);
            evidence.push(i);
        }
    }

    let channel = channel_decision(
        policy,
        subject,
        events,
        start,
        message,
        now,
        &consents,
        latest_screen,
    );
    if reasons.is_empty() {
        return channel;
    }
    if !channel.allowed {
        reasons.union(channel.reasons);
        evidence.extend(&channel.evidence);
    }
    Decision::deny(reasons, evidence)
}

fn scan(
    policy: &CompiledPolicy,
    events: &[LedgerEvent],
    start: usize,
    message: &Message,
    now: DateTime<Utc>,
) -> Consents {
    let mut found = Consents::default();
    for (i, event) in events.iter().enumerate().skip(start) {
        let (channel, topic, method, third_parties) = match &event.kind {
            EventKind::ConsentGiven {
                channel,
                topic,
                method,
                third_parties,
                ..
            } => (channel, topic, method, third_parties),
            EventKind::OptOut { channel, topic } => {
                if channel.covers(message.channel) && topic_covers(topic, &message.topic) {
                    found.latest_opt_out = Some(i);
                }
                continue;
            }
            EventKind::PreferenceSet { preferred_channel } => {
                found.latest_preference = Some((i, *preferred_channel));
                continue;
            }
            EventKind::TpsCheck { registered } => {
                found.latest_screen = Some((i, *registered, event.at));
                continue;
            }
            _ => continue,
        };
        if !channel.covers(message.channel) || !topic_covers(topic, &message.topic) {
            continue;
        }
        if let Some(party) = &message.third_party {
            if !third_parties
                .iter()
                .any(|p| p.trim().eq_ignore_ascii_case(party.trim()))
            {
                continue;
            }
        }
        found.any_covering = true;
        let mut problems = ReasonSet::default();
        let mut confirmation = None;
        if policy.needs_confirmation(*method) {
            confirmation = events[i + 1..].iter().position(|later| {
                matches!(&later.kind, EventKind::ConsentConfirmed { channel: c, topic: t } if c == channel && t == topic)
            });
            if confirmation.is_none() {
                problems.insert(Reason::ConsentUnconfirmed);
            }
        }
        if !within(policy.consent_window, event.at, now) {
            problems.insert(Reason::ConsentExpired);
        }
        if *method == ConsentMethod::VerbalUnrecorded
            && !policy.policy.accept_unrecorded_verbal_consent
        {
            problems.insert(Reason::ConsentEvidenceInsufficient);
        }
        if problems.is_empty() {
            found.latest_valid = Some((i, confirmation.map(|offset| i + 1 + offset)));
        } else {
            found.invalid_reasons.union(problems);
        }
    }
    found
}

/// The soft opt-in: a valid ground's position, or the reasons it fails (none when there is no
/// sale or negotiation at all).
fn soft_opt_in(
    policy: &CompiledPolicy,
    events: &[LedgerEvent],
    start: usize,
    message: &Message,
    now: DateTime<Utc>,
) -> Result<usize, ReasonSet> {
    let (mut any, mut similar, mut offered) = (false, false, false);
    let mut qualifying = None;
    for (i, event) in events.iter().enumerate().skip(start) {
        let (topic, refusal_offered) = match &event.kind {
            EventKind::Sale {
                topic,
                refusal_offered,
            }
            | EventKind::Negotiation {
                topic,
                refusal_offered,
            } => (topic, *refusal_offered),
            EventKind::Support {
                topic,
                refusal_offered,
            } if policy.policy.charity && event.at >= policy.charity_from => {
                (topic, *refusal_offered)
            }
            _ => continue,
        };
        any = true;
        if !policy.similar(topic, &message.topic) {
            continue;
        }
        similar = true;
        if !refusal_offered {
            continue;
        }
        offered = true;
        if within(policy.soft_opt_in_window, event.at, now) {
            qualifying = Some(i);
        }
    }
    let mut reasons = ReasonSet::default();
    match qualifying {
        Some(i) => return Ok(i),
        None if !any => {}
        None if !similar => reasons.insert(Reason::SoftOptInNotSimilar),
        None if !offered => reasons.insert(Reason::SoftOptInNoRefusalOffered),
        None => reasons.insert(Reason::SoftOptInExpired),
    }
    Err(reasons)
}

/// Where consent is required and there is none valid: the consent reasons.
fn consent_reasons(consents: &Consents, message: &Message) -> ReasonSet {
    let mut reasons = ReasonSet::default();
    if consents.any_covering {
        reasons.union(consents.invalid_reasons);
    } else {
        reasons.insert(Reason::NoConsent);
        if message.third_party.is_some() {
            reasons.insert(Reason::ThirdPartyNotConsented);
        }
    }
    reasons
}

#[allow(clippy::too_many_arguments)]
fn channel_decision(
    policy: &CompiledPolicy,
    subject: &Subject,
    events: &[LedgerEvent],
    start: usize,
    message: &Message,
    now: DateTime<Utc>,
    consents: &Consents,
    latest_screen: Option<(usize, bool, DateTime<Utc>)>,
) -> Decision {
    // The strongest basis: a valid covering consent, on any channel.
    if let Some((consent, confirmation)) = consents.latest_valid {
        let mut evidence = Evidence::default();
        evidence.push(consent);
        if let Some(c) = confirmation {
            evidence.push(c);
        }
        return Decision::allow(Basis::Consent, evidence);
    }
    let individual = subject.kind == SubscriberKind::Individual;
    match message.channel {
        Channel::Email | Channel::Sms => {
            let as_individual = individual
                || (subject.named_person && policy.policy.corporate_named_person_requires_consent);
            if !as_individual {
                return Decision::allow(Basis::Corporate, Evidence::default());
            }
            let mut reasons = consent_reasons(consents, message);
            if policy.policy.soft_opt_in && message.third_party.is_none() {
                match soft_opt_in(policy, events, start, message, now) {
                    Ok(ground) => {
                        let mut evidence = Evidence::default();
                        evidence.push(ground);
                        return Decision::allow(Basis::SoftOptIn, evidence);
                    }
                    Err(soft) => reasons.union(soft),
                }
            }
            Decision::deny(reasons, Evidence::default())
        }
        Channel::Phone => {
            let mut evidence = Evidence::default();
            let mut reasons = ReasonSet::default();
            match latest_screen {
                Some((i, registered, at)) if within(policy.tps_window, at, now) => {
                    evidence.push(i);
                    if !registered {
                        return Decision::allow(Basis::LegitimateInterest, evidence);
                    }
                    reasons.insert(Reason::TpsRegistered);
                }
                _ => reasons.insert(Reason::TpsUnscreened),
            }
            Decision::deny(reasons, evidence)
        }
        Channel::AutomatedCall => {
            Decision::deny(consent_reasons(consents, message), Evidence::default())
        }
        Channel::Fax if individual => {
            Decision::deny(consent_reasons(consents, message), Evidence::default())
        }
        Channel::Fax | Channel::Post => {
            Decision::allow(Basis::LegitimateInterest, Evidence::default())
        }
        // A message is never sent on "any"; scenario and API input refuse it before this.
        Channel::Any => Decision::deny(consent_reasons(consents, message), Evidence::default()),
    }
}

/// Sorts a ledger by time, keeping the recorded order of events at the same moment.
pub fn sort_ledger(ledger: &mut [LedgerEvent]) {
    ledger.sort_by_key(|e| e.at);
}

#[cfg(test)]
mod tests {
    use super::*;
    use assent_shared::ledger::PreferredChannel;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, day, 12, 0, 0).unwrap()
    }

    fn event(day: u32, kind: EventKind) -> LedgerEvent {
        LedgerEvent {
            id: Some(format!("d{day}")),
            at: at(day),
            kind,
        }
    }

    fn email(topic: &str) -> Message {
        Message {
            kind: MessageKind::Marketing,
            channel: Channel::Email,
            topic: topic.into(),
            third_party: None,
        }
    }

    const JANE: Subject = Subject {
        kind: SubscriberKind::Individual,
        named_person: true,
    };

    #[test]
    fn similarity_does_not_chain() {
        let policy = CompiledPolicy::new(Policy {
            similar_topics: vec![vec!["a".into(), "b".into()], vec!["b".into(), "c".into()]],
            ..Policy::default()
        });
        assert!(policy.similar("a", "b") && policy.similar("b", "c") && policy.similar("c", "c"));
        assert!(!policy.similar("a", "c"));
    }

    #[test]
    fn evidence_keeps_each_event_once_in_order() {
        let mut evidence = Evidence::default();
        for i in [3, 1, 3, 2] {
            evidence.push(i);
        }
        assert_eq!(evidence.as_slice(), [3, 1, 2]);
    }

    #[test]
    fn an_opt_out_and_preference_none_are_both_reported_with_their_evidence() {
        let ledger = [
            event(
                1,
                EventKind::ConsentGiven {
                    channel: Channel::Email,
                    topic: "boilers".into(),
                    method: ConsentMethod::PaperForm,
                    wording: "Email me boiler offers".into(),
                    third_parties: vec![],
                },
            ),
            event(
                2,
                EventKind::OptOut {
                    channel: Channel::Any,
                    topic: "*".into(),
                },
            ),
            event(
                3,
                EventKind::PreferenceSet {
                    preferred_channel: PreferredChannel::None,
                },
            ),
        ];
        let decision = decide(
            &CompiledPolicy::default(),
            &JANE,
            &ledger,
            &email("boilers"),
            at(20),
        );
        assert!(!decision.allowed);
        assert_eq!(
            decision.reasons.iter().collect::<Vec<_>>(),
            [Reason::OptedOut, Reason::PreferenceNone]
        );
        assert_eq!(decision.evidence.as_slice(), [1, 2]);
        let before = decide(
            &CompiledPolicy::default(),
            &JANE,
            &ledger,
            &email("boilers"),
            at(1),
        );
        assert_eq!(
            (before.allowed, before.basis),
            (true, Some(Basis::Consent)),
            "as of day 1 the consent stood"
        );
    }

    #[test]
    fn the_explanation_names_the_opt_out_its_date_and_the_rule() {
        let ledger = [event(
            3,
            EventKind::OptOut {
                channel: Channel::Email,
                topic: "*".into(),
            },
        )];
        let message = email("boilers");
        let decision = decide(&CompiledPolicy::default(), &JANE, &ledger, &message, at(20));
        assert_eq!(
            explain::explain(&decision, &ledger, &message, "Jane"),
            "Not allowed: Jane opted out of marketing emails on 3 January 2025 and has not opted in again since. \
             PECR reg 22 / UK GDPR Art. 21. Jane has not consented to marketing emails about boilers. PECR reg 22(2)."
        );
    }
}
