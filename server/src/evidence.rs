//! The evidence pack: for one contact, the answer "when challenged" — the whole consent ledger as
//! a timeline, each event's wording, source and recorder, the chain verification result and the
//! policy versions involved — rendered as HTML and as PDF from one document model.
//!
//! Pure: it renders what it is given and reads nothing itself.

use std::collections::HashMap;
use std::fmt::Write as _;

use assent_shared::api::{
    Communication, Contact, EventSource, PolicyVersion, RecordedEvent, RecordedVia,
};
use assent_shared::domain::OutboxState;
use assent_shared::ledger::{
    Basis, Channel, ConsentMethod, EventKind, MessageKind, PreferredChannel,
};
use chrono::{DateTime, Utc};
use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str};
use uuid::Uuid;

/// What the verification of the contact's ledger chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainStatus {
    Intact { events: u64 },
    Broken { seq: i64, problem: String },
}

/// Everything an evidence pack shows.
pub struct EvidencePack<'a> {
    pub contact: &'a Contact,
    pub ledger: &'a [RecordedEvent],
    /// Names and addresses of the users the pack names (who recorded events, who changed the
    /// policy, who wrote and approved the messages), by id.
    pub recorders: &'a HashMap<Uuid, String>,
    pub chain: ChainStatus,
    /// The contact's communication log: a warrant for every message decided for them, oldest
    /// first.
    pub communications: &'a [Communication],
    /// The policy versions in force while the ledger was kept, newest first.
    pub policies: &'a [PolicyVersion],
    pub generated_at: DateTime<Utc>,
    pub generated_by: &'a str,
}

/// A document as blocks, rendered to HTML or PDF.
#[derive(Debug, Clone, PartialEq)]
enum Block {
    Title(String),
    Heading(String),
    Text(String),
    Field(&'static str, String),
    Rule,
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%-d %B %Y, %H:%M:%S UTC").to_string()
}

fn channel(c: Channel) -> &'static str {
    match c {
        Channel::Email => "email",
        Channel::Sms => "text message (SMS)",
        Channel::Phone => "live phone calls",
        Channel::AutomatedCall => "automated calls",
        Channel::Post => "post",
        Channel::Fax => "fax",
        Channel::Any => "every channel",
    }
}

fn topic(t: &str) -> String {
    if t == "*" {
        "every topic".to_owned()
    } else {
        format!("\u{201c}{t}\u{201d}")
    }
}

fn method(m: ConsentMethod) -> &'static str {
    match m {
        ConsentMethod::WebForm => "web form",
        ConsentMethod::PaperForm => "paper form",
        ConsentMethod::EmailReply => "reply by email",
        ConsentMethod::VerbalRecorded => "recorded call",
        ConsentMethod::VerbalUnrecorded => "unrecorded call",
        ConsentMethod::Imported => "imported from another system",
    }
}

fn offered(refusal_offered: bool) -> &'static str {
    if refusal_offered {
        "a way to refuse marketing was offered"
    } else {
        "no way to refuse marketing was offered"
    }
}

/// What happened, in a sentence.
pub fn describe(event: &EventKind) -> String {
    match event {
        EventKind::ConsentGiven {
            channel: c,
            topic: t,
            method: m,
            third_parties,
            ..
        } => {
            let parties = if third_parties.is_empty() {
                String::new()
            } else {
                format!(", naming {}", third_parties.join(", "))
            };
            format!(
                "Consent given to marketing by {} about {} ({}{parties}).",
                channel(*c),
                topic(t),
                method(*m)
            )
        }
        EventKind::ConsentConfirmed {
            channel: c,
            topic: t,
        } => {
            format!(
                "Double opt-in confirmed for {} about {}.",
                channel(*c),
                topic(t)
            )
        }
        EventKind::OptOut {
            channel: c,
            topic: t,
        } => format!(
            "Opted out of marketing by {} about {}.",
            channel(*c),
            topic(t)
        ),
        EventKind::Sale {
            topic: t,
            refusal_offered,
        } => format!("Bought {}; {}.", topic(t), offered(*refusal_offered)),
        EventKind::Negotiation {
            topic: t,
            refusal_offered,
        } => {
            format!(
                "Negotiated a sale of {} (a quote or a basket); {}.",
                topic(t),
                offered(*refusal_offered)
            )
        }
        EventKind::Enquiry { topic: t } => {
            format!("Enquired about {} (not a negotiation).", topic(t))
        }
        EventKind::Support {
            topic: t,
            refusal_offered,
        } => {
            format!(
                "Supported the charitable purpose {}; {}.",
                topic(t),
                offered(*refusal_offered)
            )
        }
        EventKind::TpsCheck { registered: true } => {
            "Number screened: registered with the TPS/CTPS.".to_owned()
        }
        EventKind::TpsCheck { registered: false } => {
            "Number screened: not registered with the TPS/CTPS.".to_owned()
        }
        EventKind::PreferenceSet { preferred_channel } => match preferred_channel {
            PreferredChannel::None => "Preferred contact method set to NONE.".to_owned(),
            other => format!(
                "Preferred contact method set to {}.",
                serde_json::to_value(other)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
        },
        EventKind::Erased => {
            "Personal data erased (right to erasure); only a suppression entry remains.".to_owned()
        }
    }
}

fn basis(b: Basis) -> &'static str {
    match b {
        Basis::Service => "a service message, not marketing",
        Basis::Consent => "consent",
        Basis::SoftOptIn => "soft opt-in (an existing customer, similar products)",
        Basis::Corporate => "a corporate subscriber",
        Basis::LegitimateInterest => "legitimate interests",
    }
}

fn delivery(state: OutboxState) -> &'static str {
    match state {
        OutboxState::Queued => "waiting to be sent",
        OutboxState::Claimed => "being sent",
        OutboxState::Sent => "sent",
        OutboxState::Failed => "failed: not delivered",
        OutboxState::Indeterminate => {
            "unknown: the sender stopped while handing it over, so it may have been sent"
        }
        OutboxState::NotSent => "not sent",
    }
}

/// A warrant, as the pack shows it.
fn warrant_blocks(c: &Communication, names: &HashMap<Uuid, String>) -> Vec<Block> {
    let name_of = |id: Uuid| names.get(&id).cloned().unwrap_or_else(|| id.to_string());
    let kind = match c.message.kind {
        MessageKind::Marketing => format!("Marketing about {}", topic(&c.message.topic)),
        MessageKind::Service => "Service message".to_owned(),
    };
    let party = c
        .message
        .third_party
        .as_ref()
        .map(|p| format!(", for {p}"))
        .unwrap_or_default();
    let mut blocks = vec![
        Block::Rule,
        Block::Text(format!(
            "{kind} by {}{party}: \u{201c}{}\u{201d}.",
            channel(c.message.channel),
            c.campaign_name
        )),
        Block::Field(
            "Decided",
            format!(
                "{} under policy version {}",
                when(c.decided_at),
                c.policy_version
            ),
        ),
    ];
    let reasons = c
        .reasons
        .iter()
        .map(|r| r.replace('_', " "))
        .collect::<Vec<_>>()
        .join(", ");
    blocks.push(Block::Field(
        "Decision",
        match (c.allowed, c.basis) {
            (true, Some(b)) => format!("allowed, on the basis of {}", basis(b)),
            (true, None) => "allowed".to_owned(),
            (false, _) => format!("not allowed ({reasons})"),
        },
    ));
    if !c.evidence_seqs.is_empty() {
        let seqs = c
            .evidence_seqs
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        blocks.push(Block::Field("Rests on", format!("ledger events {seqs}")));
    }
    blocks.push(Block::Field("Written by", name_of(c.author_id)));
    blocks.push(Block::Field(
        "Approved by",
        c.approver_id
            .map(name_of)
            .unwrap_or_else(|| "no approval was needed".to_owned()),
    ));
    if let Some(point) = &c.contact_point {
        blocks.push(Block::Field("Sent to", point.clone()));
    }
    let outcome = c
        .outcome
        .as_ref()
        .map(|o| format!(" ({o})"))
        .unwrap_or_default();
    blocks.push(Block::Field(
        "Delivery",
        format!(
            "{}{outcome}, as of {}",
            delivery(c.delivery),
            when(c.delivery_updated_at)
        ),
    ));
    blocks.push(Block::Field("Message-ID", c.message_id.clone()));
    blocks.push(Block::Field("Warrant id", c.warrant_id.to_string()));
    blocks
}

fn source_text(source: &EventSource) -> String {
    [
        ("form", &source.form_url),
        ("IP address", &source.ip),
        ("browser", &source.user_agent),
        ("paper form reference", &source.paper_reference),
        ("call recording", &source.recording_reference),
    ]
    .iter()
    .filter_map(|(label, value)| value.as_ref().map(|v| format!("{label}: {v}")))
    .collect::<Vec<_>>()
    .join("; ")
}

impl EvidencePack<'_> {
    fn blocks(&self) -> Vec<Block> {
        let contact = self.contact;
        let name = [contact.first_name.as_deref(), contact.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let mut blocks = vec![
            Block::Title(format!("Evidence pack: {name}")),
            Block::Field("Contact", format!("{name} ({})", contact.id)),
            Block::Field("Subscriber", contact.subscriber_kind.as_str().to_owned()),
            Block::Field(
                "Generated",
                format!("{} by {}", when(self.generated_at), self.generated_by),
            ),
            Block::Rule,
            Block::Heading("Integrity of the ledger".into()),
        ];
        blocks.push(Block::Text(match &self.chain {
            ChainStatus::Intact { events } => format!(
                "Verified: the hash chain of this contact's {events} ledger events is intact. No event has been altered, removed or reordered since it was recorded."
            ),
            ChainStatus::Broken { seq, problem } => {
                format!("WARNING: the hash chain is broken at event {seq}: {problem}. The ledger below cannot be relied on from that event on.")
            }
        }));
        blocks.push(Block::Heading(format!(
            "Consent ledger ({} events, in the order recorded)",
            self.ledger.len()
        )));
        if self.ledger.is_empty() {
            blocks.push(Block::Text(
                "Nothing has been recorded for this contact.".into(),
            ));
        }
        for event in self.ledger {
            blocks.push(Block::Rule);
            blocks.push(Block::Text(format!(
                "{}. {}",
                event.seq,
                describe(&event.event)
            )));
            blocks.push(Block::Field("Happened", when(event.at)));
            if let EventKind::ConsentGiven { wording, .. } = &event.event {
                let version = event
                    .wording_version
                    .map(|v| format!(" (wording version {v})"))
                    .unwrap_or_default();
                blocks.push(Block::Field(
                    "Words shown",
                    format!("\u{201c}{wording}\u{201d}{version}"),
                ));
            }
            if let Some(source) = &event.source {
                blocks.push(Block::Field("Source", source_text(source)));
            }
            // A member of staff by name and address; anyone else as the ledger names them.
            let recorder = event
                .recorded_by
                .and_then(|id| self.recorders.get(&id).cloned())
                .or_else(|| event.recorded_by_name.clone())
                .unwrap_or_else(|| "someone Assent did not record".to_owned());
            let (recorder, via) = match event.recorded_via {
                RecordedVia::User => (recorder, ""),
                RecordedVia::DataSubject => (
                    "the person themselves".to_owned(),
                    " through the public pages",
                ),
                RecordedVia::Import => (recorder, " by import"),
                RecordedVia::System => (recorder, ""),
            };
            blocks.push(Block::Field(
                "Recorded",
                format!("{} by {recorder}{via}", when(event.recorded_at)),
            ));
            if let Some(external) = &event.external_id {
                blocks.push(Block::Field("Imported id", external.clone()));
            }
            blocks.push(Block::Field("Event id", event.id.to_string()));
        }
        blocks.push(Block::Rule);
        blocks.push(Block::Heading(format!(
            "Communication log ({} {})",
            self.communications.len(),
            if self.communications.len() == 1 {
                "warrant"
            } else {
                "warrants"
            }
        )));
        if self.communications.is_empty() {
            blocks.push(Block::Text(
                "No message has been decided for this contact through Assent.".into(),
            ));
        } else {
            blocks.push(Block::Text(
                "Before each message the sender decided this contact again, against the ledger and the policy of that moment, and wrote the decision down as a warrant, whether it allowed the message or not. Each campaign's warrants form a hash chain of their own, checked by the command assent-server audit verify.".into(),
            ));
        }
        for communication in self.communications {
            blocks.extend(warrant_blocks(communication, self.recorders));
        }
        blocks.push(Block::Rule);
        blocks.push(Block::Heading("Compliance policy".into()));
        for policy in self.policies {
            let by = policy.changed_by.map(|id| {
                self.recorders
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| id.to_string())
            });
            let origin = match (policy.version, by) {
                (0, _) => "the built-in default".to_owned(),
                (_, Some(by)) => format!("set on {} by {by}", when(policy.changed_at)),
                (_, None) => format!("set on {}", when(policy.changed_at)),
            };
            // A Policy is plain data: it always serialises.
            let settings = serde_json::to_string(&policy.policy).unwrap_or_default();
            blocks.push(Block::Field(
                "Version",
                format!("{} ({origin}): {settings}", policy.version),
            ));
        }
        blocks
    }

    /// The pack as a standalone HTML page.
    pub fn html(&self) -> String {
        let mut html = String::from(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Evidence pack</title>\n<style>\
             body{font:15px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}\
             h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem}dl{display:grid;grid-template-columns:9rem 1fr;gap:.2rem 1rem;margin:.3rem 0}\
             dt{color:#555}dd{margin:0;overflow-wrap:anywhere}hr{border:0;border-top:1px solid #ccc;margin:1rem 0}\
             @media print{body{margin:0}}</style></head><body>\n",
        );
        for block in self.blocks() {
            // Writing to a String cannot fail.
            let _ = match block {
                Block::Title(text) => writeln!(html, "<h1>{}</h1>", crate::html::escape(&text)),
                Block::Heading(text) => writeln!(html, "<h2>{}</h2>", crate::html::escape(&text)),
                Block::Text(text) => writeln!(html, "<p>{}</p>", crate::html::escape(&text)),
                Block::Field(label, value) => writeln!(
                    html,
                    "<dl><dt>{}</dt><dd>{}</dd></dl>",
                    crate::html::escape(label),
                    crate::html::escape(&value)
                ),
                Block::Rule => writeln!(html, "<hr>"),
            };
        }
        html.push_str("</body></html>\n");
        html
    }

    /// The pack as a PDF (A4, the standard Helvetica fonts).
    pub fn pdf(&self) -> Vec<u8> {
        let mut layout = Layout::default();
        for block in self.blocks() {
            match block {
                Block::Title(text) => layout.paragraph(&text, Style::Title),
                Block::Heading(text) => layout.paragraph(&text, Style::Heading),
                Block::Text(text) => layout.paragraph(&text, Style::Body),
                Block::Field(label, value) => {
                    layout.paragraph(&format!("{label}: {value}"), Style::Body)
                }
                Block::Rule => layout.gap(6.0),
            }
        }
        layout.finish()
    }
}

#[derive(Clone, Copy)]
enum Style {
    Title,
    Heading,
    Body,
}

impl Style {
    fn font(self) -> (&'static [u8], f32) {
        match self {
            Style::Title => (b"F2", 16.0),
            Style::Heading => (b"F2", 12.0),
            Style::Body => (b"F1", 9.5),
        }
    }
}

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 50.0;

/// Lays text out on A4 pages, wrapping lines by an estimate of Helvetica's average width.
#[derive(Default)]
struct Layout {
    pages: Vec<Content>,
    y: f32,
}

impl Layout {
    fn page(&mut self) -> &mut Content {
        if self.pages.is_empty() || self.y < MARGIN {
            self.pages.push(Content::new());
            self.y = PAGE_HEIGHT - MARGIN;
        }
        // A page was pushed just above if there was none.
        self.pages.last_mut().expect("a page")
    }

    fn gap(&mut self, points: f32) {
        self.y -= points;
    }

    fn paragraph(&mut self, text: &str, style: Style) {
        let (font, size) = style.font();
        let per_line = ((PAGE_WIDTH - 2.0 * MARGIN) / (size * 0.5)) as usize;
        if matches!(style, Style::Heading) {
            self.gap(size);
        }
        for line in wrap(text, per_line) {
            self.page();
            let y = self.y;
            let content = self.page();
            content.begin_text();
            content.set_font(Name(font), size);
            content.next_line(MARGIN, y);
            content.show(Str(&win_ansi(&line)));
            content.end_text();
            self.y -= size * 1.35;
        }
        self.gap(2.0);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.pages.is_empty() {
            self.page();
        }
        let mut pdf = Pdf::new();
        let catalog = Ref::new(1);
        let tree = Ref::new(2);
        let (regular, bold) = (Ref::new(3), Ref::new(4));
        let page_ids: Vec<Ref> = (0..self.pages.len())
            .map(|i| Ref::new(5 + 2 * i as i32))
            .collect();
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree)
            .kids(page_ids.iter().copied())
            .count(page_ids.len() as i32);
        pdf.type1_font(regular)
            .base_font(Name(b"Helvetica"))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.type1_font(bold)
            .base_font(Name(b"Helvetica-Bold"))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        for (content, page_id) in self.pages.into_iter().zip(&page_ids) {
            let content_id = Ref::new(page_id.get() + 1);
            let mut page = pdf.page(*page_id);
            page.parent(tree)
                .media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
                .contents(content_id);
            let mut resources = page.resources();
            let mut fonts = resources.fonts();
            fonts.pair(Name(b"F1"), regular);
            fonts.pair(Name(b"F2"), bold);
            drop(fonts);
            drop(resources);
            drop(page);
            pdf.stream(content_id, &content.finish());
        }
        pdf.finish()
    }
}

/// Splits text into lines of at most `width` characters at spaces (longer words are cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_owned();
        while word.chars().count() > width {
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(head);
        }
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Text in the PDF standard fonts' WinAnsi encoding; what it cannot show becomes `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '\u{2018}' => 0x91,
            '\u{2019}' => 0x92,
            '\u{201c}' => 0x93,
            '\u{201d}' => 0x94,
            '\u{2022}' => 0x95,
            '\u{2013}' => 0x96,
            '\u{2014}' => 0x97,
            '\u{20ac}' => 0x80,
            _ => b'?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wrap_at_spaces_and_long_words_are_cut() {
        assert_eq!(wrap("one two three", 7), ["one two", "three"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 10), [""]);
    }

    #[test]
    fn text_outside_win_ansi_becomes_a_question_mark() {
        assert_eq!(
            win_ansi("£5 “ok” – Zoë 日"),
            b"\xa35 \x93ok\x94 \x96 Zo\xeb ?".to_vec()
        );
    }
}
