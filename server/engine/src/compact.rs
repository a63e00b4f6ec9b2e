//! A compact binary copy of a ledger, holding exactly what the engine reads (times, types,
//! channels, topics, methods, flags, third parties; not wordings or sources), so that deciding
//! for a whole audience reads one small row per contact instead of one row per event.
//!
//! The copy is derived: the append-only, hash-chained events stay the record, and
//! `audit verify` checks that every copy still matches them.
//!
//! Layout of one event: `at` and `recorded_at` as microseconds since the epoch (i64, little
//! endian), a kind byte, then the kind's fields: channel and method bytes, a flag byte, the topic
//! and third-party names as length-prefixed UTF-8 (u16 lengths).

use assent_shared::ledger::{
    Channel, ConsentMethod, EventKind, LedgerEvent, PreferredChannel, Topic,
};
use chrono::{DateTime, Utc};

/// One event of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedEvent {
    pub at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the decision copy of a ledger is damaged: {0}")]
pub struct DamagedCopy(&'static str);

/// An enum value as its place in `ALL`, the order the copy's format fixes.
fn index<T: PartialEq>(all: &[T], value: &T) -> u8 {
    // `ALL` lists every variant of its enum, and none has more than 255.
    all.iter().position(|v| v == value).unwrap_or(0) as u8
}

/// Topics and third-party names are validated to at most `NAME_MAX` characters (800 bytes), so
/// a u16 length always holds them.
fn put_text(out: &mut Vec<u8>, text: &str) {
    debug_assert!(text.len() <= u16::MAX as usize);
    out.extend_from_slice(&(text.len() as u16).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// Appends one event to a copy.
pub fn push(copy: &mut Vec<u8>, at: DateTime<Utc>, recorded_at: DateTime<Utc>, kind: &EventKind) {
    copy.extend_from_slice(&at.timestamp_micros().to_le_bytes());
    copy.extend_from_slice(&recorded_at.timestamp_micros().to_le_bytes());
    match kind {
        EventKind::ConsentGiven {
            channel,
            topic,
            method,
            third_parties,
            ..
        } => {
            copy.extend_from_slice(&[
                0,
                index(Channel::ALL, channel),
                index(ConsentMethod::ALL, method),
                // Validation allows at most THIRD_PARTIES_MAX (well under 256); a longer list
                // recorded before that limit is cut at 255 here, never written misaligned.
                third_parties.len().min(255) as u8,
            ]);
            put_text(copy, topic);
            for party in third_parties.iter().take(255) {
                put_text(copy, party);
            }
        }
        EventKind::ConsentConfirmed { channel, topic } => {
            copy.extend_from_slice(&[1, index(Channel::ALL, channel)]);
            put_text(copy, topic);
        }
        EventKind::OptOut { channel, topic } => {
            copy.extend_from_slice(&[2, index(Channel::ALL, channel)]);
            put_text(copy, topic);
        }
        EventKind::Sale {
            topic,
            refusal_offered,
        } => {
            copy.extend_from_slice(&[3, u8::from(*refusal_offered)]);
            put_text(copy, topic);
        }
        EventKind::Negotiation {
            topic,
            refusal_offered,
        } => {
            copy.extend_from_slice(&[4, u8::from(*refusal_offered)]);
            put_text(copy, topic);
        }
        EventKind::Enquiry { topic } => {
            copy.push(5);
            put_text(copy, topic);
        }
        EventKind::Support {
            topic,
            refusal_offered,
        } => {
            copy.extend_from_slice(&[6, u8::from(*refusal_offered)]);
            put_text(copy, topic);
        }
        EventKind::TpsCheck { registered } => copy.extend_from_slice(&[7, u8::from(*registered)]),
        EventKind::PreferenceSet { preferred_channel } => {
            copy.extend_from_slice(&[8, index(PreferredChannel::ALL, preferred_channel)])
        }
        EventKind::Erased => copy.push(9),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DamagedCopy> {
        if self.bytes.len() < n {
            return Err(DamagedCopy("it ends in the middle of an event"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, DamagedCopy> {
        Ok(self.take(1)?[0])
    }

    fn time(&mut self) -> Result<DateTime<Utc>, DamagedCopy> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8)?);
        DateTime::from_timestamp_micros(i64::from_le_bytes(raw))
            .ok_or(DamagedCopy("a time is out of range"))
    }

    fn text(&mut self) -> Result<&'a str, DamagedCopy> {
        let length = self.take(2)?;
        let length = u16::from_le_bytes([length[0], length[1]]) as usize;
        std::str::from_utf8(self.take(length)?).map_err(|_| DamagedCopy("a text is not UTF-8"))
    }

    fn pick<T: Copy>(&mut self, all: &[T]) -> Result<T, DamagedCopy> {
        all.get(self.byte()? as usize)
            .copied()
            .ok_or(DamagedCopy("an unknown value"))
    }
}

/// Reads a copy back, in the order it was written.
pub fn read(copy: &[u8]) -> Result<Vec<CopiedEvent>, DamagedCopy> {
    let mut reader = Reader { bytes: copy };
    let mut events = Vec::new();
    while !reader.bytes.is_empty() {
        let at = reader.time()?;
        let recorded_at = reader.time()?;
        let kind = match reader.byte()? {
            0 => {
                let channel = reader.pick(Channel::ALL)?;
                let method = reader.pick(ConsentMethod::ALL)?;
                let parties = reader.byte()?;
                let topic = Topic::from(reader.text()?);
                let third_parties = (0..parties)
                    .map(|_| reader.text().map(str::to_owned))
                    .collect::<Result<_, _>>()?;
                EventKind::ConsentGiven {
                    channel,
                    topic,
                    method,
                    wording: String::new(),
                    third_parties,
                }
            }
            1 => EventKind::ConsentConfirmed {
                channel: reader.pick(Channel::ALL)?,
                topic: Topic::from(reader.text()?),
            },
            2 => EventKind::OptOut {
                channel: reader.pick(Channel::ALL)?,
                topic: Topic::from(reader.text()?),
            },
            3 => EventKind::Sale {
                refusal_offered: reader.byte()? != 0,
                topic: Topic::from(reader.text()?),
            },
            4 => EventKind::Negotiation {
                refusal_offered: reader.byte()? != 0,
                topic: Topic::from(reader.text()?),
            },
            5 => EventKind::Enquiry {
                topic: Topic::from(reader.text()?),
            },
            6 => EventKind::Support {
                refusal_offered: reader.byte()? != 0,
                topic: Topic::from(reader.text()?),
            },
            7 => EventKind::TpsCheck {
                registered: reader.byte()? != 0,
            },
            8 => EventKind::PreferenceSet {
                preferred_channel: reader.pick(PreferredChannel::ALL)?,
            },
            9 => EventKind::Erased,
            _ => return Err(DamagedCopy("an unknown event type")),
        };
        events.push(CopiedEvent {
            at,
            recorded_at,
            kind,
        });
    }
    Ok(events)
}

/// A ledger as the engine reads it, from a copy, with where each event is in the recorded ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopiedLedger {
    /// Sorted by time, ties in recorded order.
    pub events: Vec<LedgerEvent>,
    /// `seqs[i]` is the place (`seq`, from 1) of `events[i]` in the contact's recorded ledger,
    /// so that a decision's evidence can be cited exactly.
    pub seqs: Vec<i64>,
}

impl CopiedLedger {
    /// The recorded places of the events a decision cites.
    pub fn cited(&self, evidence: &crate::Evidence) -> Vec<i64> {
        evidence
            .as_slice()
            .iter()
            .filter_map(|&i| self.seqs.get(i as usize).copied())
            .collect()
    }
}

/// The engine's ledger from a copy: events recorded by `known_at` (all when `None`), sorted by
/// time, ties in recorded order, each with its place in the recorded ledger.
pub fn ledger(copy: &[u8], known_at: Option<DateTime<Utc>>) -> Result<CopiedLedger, DamagedCopy> {
    let mut placed: Vec<(i64, LedgerEvent)> = read(copy)?
        .into_iter()
        .zip(1_i64..)
        .filter(|(e, _)| known_at.is_none_or(|t| e.recorded_at <= t))
        .map(|(e, seq)| {
            (
                seq,
                LedgerEvent {
                    id: None,
                    at: e.at,
                    kind: e.kind,
                },
            )
        })
        .collect();
    // The same order as `sort_ledger`: by time, stable.
    placed.sort_by_key(|(_, e)| e.at);
    let (seqs, events) = placed.into_iter().unzip();
    Ok(CopiedLedger { events, seqs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::Generator;

    /// The engine's view of an event: a copy does not keep wordings.
    fn without_wording(kind: &EventKind) -> EventKind {
        let mut kind = kind.clone();
        if let EventKind::ConsentGiven { wording, .. } = &mut kind {
            wording.clear();
        }
        kind
    }

    #[test]
    fn a_copy_reads_back_every_event_the_engine_needs() {
        let mut generator = Generator::new(3);
        for _ in 0..200 {
            let ledger = generator.ledger();
            let mut copy = Vec::new();
            for event in &ledger {
                push(&mut copy, event.at, event.at, &event.kind);
            }
            let back = read(&copy).unwrap();
            assert_eq!(back.len(), ledger.len());
            for (original, copied) in ledger.iter().zip(&back) {
                assert_eq!(
                    (copied.at, &copied.kind),
                    (original.at, &without_wording(&original.kind))
                );
            }
        }
    }

    #[test]
    fn third_parties_and_unicode_topics_survive() {
        let kind = EventKind::ConsentGiven {
            channel: Channel::Any,
            topic: Topic::from("crèmes-brûlées"),
            method: ConsentMethod::VerbalRecorded,
            wording: "ignored".into(),
            third_parties: vec!["Harbour Mutual".into(), "Alpine Trails Ltd".into()],
        };
        let mut copy = Vec::new();
        let at = DateTime::from_timestamp(1_750_000_000, 0).unwrap();
        push(&mut copy, at, at, &kind);
        assert_eq!(read(&copy).unwrap()[0].kind, without_wording(&kind));
    }

    #[test]
    fn the_engines_ledger_keeps_each_events_recorded_place() {
        let day = |d: u32| {
            chrono::TimeZone::with_ymd_and_hms(&Utc, 2025, 3, d, 9, 0, 0)
                .single()
                .unwrap()
        };
        let mut copy = Vec::new();
        let opt_out = EventKind::OptOut {
            channel: Channel::Email,
            topic: Topic::from("*"),
        };
        let screen = EventKind::TpsCheck { registered: false };
        // Recorded in the order 1, 2, 3, but happened in the order 2, 3, 1; the third was
        // recorded only on the 20th.
        push(&mut copy, day(9), day(9), &opt_out);
        push(&mut copy, day(1), day(10), &screen);
        push(&mut copy, day(5), day(20), &opt_out);
        let all = ledger(&copy, None).unwrap();
        assert_eq!(all.seqs, [2, 3, 1]);
        assert_eq!(all.events[0].kind, screen);
        let then = ledger(&copy, Some(day(15))).unwrap();
        assert_eq!(then.seqs, [2, 1]);
        let mut evidence = crate::Evidence::default();
        evidence.push(1);
        assert_eq!(then.cited(&evidence), [1]);
    }

    #[test]
    fn a_truncated_or_altered_copy_is_refused() {
        let mut copy = Vec::new();
        let at = DateTime::from_timestamp(1_750_000_000, 0).unwrap();
        push(
            &mut copy,
            at,
            at,
            &EventKind::OptOut {
                channel: Channel::Email,
                topic: Topic::from("*"),
            },
        );
        assert!(read(&copy[..copy.len() - 1]).is_err());
        copy[16] = 42;
        assert!(read(&copy).is_err());
    }
}
