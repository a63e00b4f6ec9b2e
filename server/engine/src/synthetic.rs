//! Seeded synthetic ledgers and messages, realistic in shape (about ten events a person: sign-ups,
//! confirmations, purchases, quotes, opt-outs, screens, preferences, now and then an erasure), for
//! benchmarks and generated scenario suites. The same seed gives the same data.

use assent_shared::domain::SubscriberKind;
use assent_shared::ledger::{
    Channel, ConsentMethod, EventKind, LedgerEvent, Message, MessageKind, PreferredChannel,
    Subject, Topic,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TOPICS: &[&str] = &[
    "boilers",
    "boiler-cover",
    "radiators",
    "solar-panels",
    "insulation",
    "heat-pumps",
];
const CHANNELS: &[Channel] = &[Channel::Email, Channel::Sms, Channel::Phone, Channel::Post];
const MESSAGE_CHANNELS: &[Channel] = &[
    Channel::Email,
    Channel::Email,
    Channel::Sms,
    Channel::Phone,
    Channel::Post,
    Channel::AutomatedCall,
];
const METHODS: &[ConsentMethod] = &[
    ConsentMethod::WebForm,
    ConsentMethod::PaperForm,
    ConsentMethod::EmailReply,
    ConsentMethod::VerbalRecorded,
];

/// A source of synthetic people and messages.
pub struct Generator {
    rng: StdRng,
    pub now: DateTime<Utc>,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        // A fixed, valid date: `single()` cannot be None.
        let now = Utc
            .with_ymd_and_hms(2026, 6, 1, 9, 0, 0)
            .single()
            .expect("a valid date");
        Generator {
            rng: StdRng::seed_from_u64(seed),
            now,
        }
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.gen_range(0..items.len())]
    }

    fn topic(&mut self) -> Topic {
        Topic::from(self.pick(TOPICS))
    }

    pub fn subject(&mut self) -> Subject {
        if self.rng.gen_bool(0.85) {
            Subject {
                kind: SubscriberKind::Individual,
                named_person: true,
            }
        } else {
            Subject {
                kind: SubscriberKind::Corporate,
                named_person: self.rng.gen_bool(0.7),
            }
        }
    }

    /// About ten events over the three years before `now`, sorted by time.
    pub fn ledger(&mut self) -> Vec<LedgerEvent> {
        let count = self.rng.gen_range(6..=14);
        let mut events = Vec::with_capacity(count + 1);
        for n in 0..count {
            let at = self.now - Duration::minutes(self.rng.gen_range(0..3 * 365 * 24 * 60));
            let kind = match self.rng.gen_range(0..100) {
                0..=24 => {
                    let channel = self.pick(CHANNELS);
                    let topic = if self.rng.gen_bool(0.2) {
                        Topic::from("*")
                    } else {
                        self.topic()
                    };
                    let method = self.pick(METHODS);
                    if method == ConsentMethod::WebForm && self.rng.gen_bool(0.8) {
                        let confirmed_at = at + Duration::minutes(self.rng.gen_range(1..120));
                        events.push(LedgerEvent {
                            id: Some(format!("c{n}")),
                            at: confirmed_at.min(self.now),
                            kind: EventKind::ConsentConfirmed {
                                channel,
                                topic: topic.clone(),
                            },
                        });
                    }
                    EventKind::ConsentGiven {
                        channel,
                        topic,
                        method,
                        wording: "Please send me offers.".into(),
                        third_parties: vec![],
                    }
                }
                25..=36 => EventKind::OptOut {
                    channel: if self.rng.gen_bool(0.3) {
                        Channel::Any
                    } else {
                        self.pick(CHANNELS)
                    },
                    topic: if self.rng.gen_bool(0.5) {
                        Topic::from("*")
                    } else {
                        self.topic()
                    },
                },
                37..=54 => EventKind::Sale {
                    topic: self.topic(),
                    refusal_offered: self.rng.gen_bool(0.8),
                },
                55..=69 => EventKind::Negotiation {
                    topic: self.topic(),
                    refusal_offered: self.rng.gen_bool(0.7),
                },
                70..=77 => EventKind::Enquiry {
                    topic: self.topic(),
                },
                78..=89 => EventKind::TpsCheck {
                    registered: self.rng.gen_bool(0.2),
                },
                90..=98 => EventKind::PreferenceSet {
                    preferred_channel: self.pick(&[
                        PreferredChannel::Email,
                        PreferredChannel::Phone,
                        PreferredChannel::Post,
                        PreferredChannel::None,
                    ]),
                },
                _ => EventKind::Erased,
            };
            events.push(LedgerEvent {
                id: Some(format!("e{n}")),
                at,
                kind,
            });
        }
        crate::sort_ledger(&mut events);
        events
    }

    pub fn message(&mut self) -> Message {
        let kind = if self.rng.gen_bool(0.9) {
            MessageKind::Marketing
        } else {
            MessageKind::Service
        };
        let third_party = self.rng.gen_bool(0.05).then(|| "Harbour Mutual".to_owned());
        Message {
            kind,
            channel: self.pick(MESSAGE_CHANNELS),
            topic: self.topic().to_string(),
            third_party,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_ledgers_of_about_ten_events() {
        let (mut a, mut b) = (Generator::new(7), Generator::new(7));
        let (first, again) = (a.ledger(), b.ledger());
        assert_eq!(first, again);
        let sizes: Vec<usize> = (0..200).map(|_| a.ledger().len()).collect();
        let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
        assert!((8.0..=14.0).contains(&mean), "mean ledger size {mean}");
        assert!(first.windows(2).all(|w| w[0].at <= w[1].at));
    }
}
