//! The consent ledger's vocabulary: events, messages, subjects, the compliance policy, and the
//! bases and reasons of a decision — exactly the format of the compliance scenarios
//! (SCENARIOS.md), which is also the ledger's import/export format (one event per JSON line).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{string_enum, InvalidValue, SubscriberKind};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

// The order of the variants of Channel, PreferredChannel and ConsentMethod is part of the
// server's decision copy format (it stores their index in `ALL`): add new ones at the end.
string_enum! {
    /// How a message reaches a person. `Any` appears only in consents and opt-outs (every channel).
    Channel {
        Email => "email",
        Sms => "sms",
        /// A live call.
        Phone => "phone",
        AutomatedCall => "automated_call",
        Post => "post",
        Fax => "fax",
        /// Every channel (consents and opt-outs only).
        Any => "any",
    }
}

impl Channel {
    /// Whether a consent or opt-out on `self` reaches a message sent on `message`.
    pub fn covers(self, message: Channel) -> bool {
        self == Channel::Any || self == message
    }
}

string_enum! {
    /// A person's preferred contact method: a channel, or `none` (no marketing at all).
    PreferredChannel {
        None => "none",
        Email => "email",
        Sms => "sms",
        Phone => "phone",
        AutomatedCall => "automated_call",
        Post => "post",
        Fax => "fax",
    }
}

string_enum! {
    /// How a consent was collected.
    ConsentMethod {
        WebForm => "web_form",
        PaperForm => "paper_form",
        EmailReply => "email_reply",
        VerbalRecorded => "verbal_recorded",
        VerbalUnrecorded => "verbal_unrecorded",
        Imported => "imported",
    }
}

/// A product or service category (`boilers`), or `*` in consents and opt-outs. Topics are short,
/// so they are kept inline rather than on the heap: the engine compares many of them.
pub type Topic = compact_str::CompactString;

/// `*`: every topic of our own marketing.
pub const ALL_TOPICS: &str = "*";

/// Whether a consent or opt-out on `scope` reaches a message about `topic`.
pub fn topic_covers(scope: &str, topic: &str) -> bool {
    scope == ALL_TOPICS || scope == topic
}

/// What happened, in the ledger's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// An opt-in for marketing on a channel about a topic, with the wording shown.
    ConsentGiven {
        channel: Channel,
        #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Name))]
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        topic: Topic,
        method: ConsentMethod,
        #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Wording))]
        wording: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::ThirdParties))]
        third_parties: Vec<String>,
    },
    /// The double opt-in confirmation of earlier consents with exactly this channel and topic.
    ConsentConfirmed {
        channel: Channel,
        #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Name))]
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        topic: Topic,
    },
    /// An objection, unsubscribe or refusal.
    OptOut {
        channel: Channel,
        #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Name))]
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        topic: Topic,
    },
    /// A purchase.
    Sale {
        #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Name))]
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        topic: Topic,
        refusal_offered: bool,
    },
    /// Negotiations for a sale: a quote request, an item put in a basket.
    Negotiation {
        #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Name))]
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        topic: Topic,
        refusal_offered: bool,
    },
    /// A contact that is not a negotiation (opening hours, directions).
    Enquiry {
        #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Name))]
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        topic: Topic,
    },
    /// For a charity: interest in or support for its charitable purpose.
    Support {
        #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Name))]
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        topic: Topic,
        refusal_offered: bool,
    },
    /// A screen of the phone number against the TPS/CTPS.
    TpsCheck { registered: bool },
    /// The person's preferred contact method.
    PreferenceSet { preferred_channel: PreferredChannel },
    /// The right to erasure carried out: only a suppression entry remains.
    Erased,
}

impl EventKind {
    /// The `type` name of the event.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::ConsentGiven { .. } => "consent_given",
            EventKind::ConsentConfirmed { .. } => "consent_confirmed",
            EventKind::OptOut { .. } => "opt_out",
            EventKind::Sale { .. } => "sale",
            EventKind::Negotiation { .. } => "negotiation",
            EventKind::Enquiry { .. } => "enquiry",
            EventKind::Support { .. } => "support",
            EventKind::TpsCheck { .. } => "tps_check",
            EventKind::PreferenceSet { .. } => "preference_set",
            EventKind::Erased => "erased",
        }
    }
}

/// One ledger event: when it happened, what happened, and an optional id to cite it by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LedgerEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Marketing, or a service message (transactional or account information, nothing promotional).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Marketing,
    Service,
}

impl MessageKind {
    /// Its name in the API and in stored rows.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Marketing => "marketing",
            MessageKind::Service => "service",
        }
    }
}

/// What we want to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Message {
    pub kind: MessageKind,
    /// Never `any`.
    pub channel: Channel,
    /// What it promotes (ignored for service messages).
    #[serde(default)]
    pub topic: String,
    /// Set when it markets another organisation's products.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub third_party: Option<String>,
}

/// Who the message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Subject {
    pub kind: SubscriberKind,
    /// For a corporate subscriber: the address reaches a named person, not a role address.
    #[serde(default = "yes")]
    pub named_person: bool,
}

fn yes() -> bool {
    true
}

/// The organisation's compliance policy. Absent fields take the defaults of SCENARIOS.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Whether the soft opt-in (PECR reg 22(3)) may be relied on at all.
    pub soft_opt_in: bool,
    /// How long a sale or negotiation supports a soft opt-in; `null`: no limit.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 36500))]
    #[serde(deserialize_with = "crate::whole::option_u32")]
    pub soft_opt_in_max_age_days: Option<u32>,
    /// How long a consent stays valid; `null`: no limit.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 36500))]
    #[serde(deserialize_with = "crate::whole::option_u32")]
    pub consent_max_age_days: Option<u32>,
    /// Consents collected by these methods need a double opt-in confirmation.
    pub double_opt_in_methods: Vec<ConsentMethod>,
    pub accept_unrecorded_verbal_consent: bool,
    /// A named person at a corporate subscriber is treated as an individual for email and SMS.
    pub corporate_named_person_requires_consent: bool,
    pub honour_preference_none: bool,
    /// How recent a TPS/CTPS screen must be for a live call; `null`: any screen.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 36500))]
    #[serde(deserialize_with = "crate::whole::option_u32")]
    pub tps_check_max_age_days: Option<u32>,
    /// Groups of topics that count as similar products for the soft opt-in.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::schema::TopicGroup>))]
    pub similar_topics: Vec<Vec<String>>,
    /// The sender is a charity (the charitable-purpose soft opt-in, PECR reg 22(3A)).
    pub charity: bool,
    /// Service messages go out without a manager's approval: submitted, they are approved at
    /// once, their audience frozen then. One whose text reads like marketing (the organisation's
    /// list of marketing phrases) still waits for a manager. Marketing always does.
    pub service_messages_skip_approval: bool,
    /// Service emails end with a neutral link to the reader's contact preferences (seed 001); off,
    /// they carry none (the sender's name and address stay).
    pub service_preferences_link: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            soft_opt_in: true,
            soft_opt_in_max_age_days: Some(730),
            consent_max_age_days: None,
            double_opt_in_methods: vec![ConsentMethod::WebForm],
            accept_unrecorded_verbal_consent: false,
            corporate_named_person_requires_consent: true,
            honour_preference_none: true,
            tps_check_max_age_days: Some(28),
            similar_topics: Vec::new(),
            charity: false,
            service_messages_skip_approval: false,
            service_preferences_link: true,
        }
    }
}

string_enum! {
    /// On what ground a message may be sent.
    Basis {
        Service => "service",
        Consent => "consent",
        SoftOptIn => "soft_opt_in",
        Corporate => "corporate",
        LegitimateInterest => "legitimate_interest",
    }
}

string_enum! {
    /// Why a message may not be sent. The order is the order reasons are reported in.
    Reason {
        Suppressed => "suppressed",
        OptedOut => "opted_out",
        PreferenceNone => "preference_none",
        NoConsent => "no_consent",
        ConsentUnconfirmed => "consent_unconfirmed",
        ConsentExpired => "consent_expired",
        ConsentEvidenceInsufficient => "consent_evidence_insufficient",
        SoftOptInNotSimilar => "soft_opt_in_not_similar",
        SoftOptInNoRefusalOffered => "soft_opt_in_no_refusal_offered",
        SoftOptInExpired => "soft_opt_in_expired",
        ThirdPartyNotConsented => "third_party_not_consented",
        TpsRegistered => "tps_registered",
        TpsUnscreened => "tps_unscreened",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_and_write_the_scenario_format() {
        let line = r#"{"id":"e1","at":"2025-05-10T14:03:00Z","type":"consent_given","channel":"email","topic":"boilers","method":"paper_form","wording":"Tick here"}"#;
        let event: LedgerEvent = serde_json::from_str(line).unwrap();
        assert_eq!(event.id.as_deref(), Some("e1"));
        assert!(matches!(
            event.kind,
            EventKind::ConsentGiven {
                channel: Channel::Email,
                method: ConsentMethod::PaperForm,
                ..
            }
        ));
        let again: LedgerEvent =
            serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert_eq!(again, event);
        let erased: LedgerEvent =
            serde_json::from_str(r#"{"at":"2025-06-30T09:00:00Z","type":"erased"}"#).unwrap();
        assert_eq!(erased.kind, EventKind::Erased);
    }

    #[test]
    fn a_policy_override_keeps_the_other_defaults_and_refuses_unknown_keys() {
        let policy: Policy =
            serde_json::from_str(r#"{"charity": true, "consent_max_age_days": 365}"#).unwrap();
        assert!(policy.charity && policy.soft_opt_in);
        assert_eq!(policy.consent_max_age_days, Some(365));
        assert_eq!(policy.tps_check_max_age_days, Some(28));
        assert!(serde_json::from_str::<Policy>(r#"{"soft_opt_out": true}"#).is_err());
    }

    #[test]
    fn bases_and_reasons_are_written_as_the_scenarios_name_them() {
        for reason in Reason::ALL {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
            assert_eq!(reason.as_str().parse::<Reason>().unwrap(), *reason);
        }
        assert_eq!(
            serde_json::to_value(Basis::SoftOptIn).unwrap(),
            "soft_opt_in"
        );
        assert!("maybe".parse::<Basis>().is_err());
    }

    #[test]
    fn coverage_widens_only_with_any_and_star() {
        assert!(Channel::Any.covers(Channel::Sms));
        assert!(!Channel::Email.covers(Channel::Sms));
        assert!(topic_covers("*", "boilers"));
        assert!(!topic_covers("boilers", "boiler-cover"));
    }
}
