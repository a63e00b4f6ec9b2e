//! Message templates: the subject and body an author writes, with merge fields such as
//! `{{first_name}}` or `{{first_name|there}}` (a default after the bar), filled in per recipient.
//!
//! An email body is CommonMark (paragraphs, emphasis, lists, links `[text](url)`); it becomes the
//! HTML part, and the plain-text part is made from the same document. Raw HTML in a body is shown
//! as text, never passed through. Merge values are escaped for where they land: backslash-escaped
//! before the Markdown is read (so a value is never read as Markdown), then HTML-escaped by the
//! HTML writer. An SMS body and a subject are plain text.
//!
//! A recipient who lacks a value for a field used without a default is not sent the message (the
//! preview lists them): nobody gets "Dear ,".

use pulldown_cmark::{html, Event, Options, Parser, Tag, TagEnd};

/// What a template may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MergeField {
    FirstName,
    LastName,
    FullName,
    Company,
    /// The recipient's one-click unsubscribe page for this message.
    UnsubscribeUrl,
    /// The recipient's preference centre.
    PreferencesUrl,
    /// The page that confirms a sign-up: only in the confirmation a sign-up form sends.
    ConfirmUrl,
    /// What a consent receipt states: only in the receipt a sign-up form sends.
    ReceiptId,
    ConsentAddress,
    ConsentTopics,
    ConsentWording,
    ConsentGivenAt,
    ConsentConfirmedAt,
}

impl MergeField {
    pub const ALL: [MergeField; 13] = [
        MergeField::FirstName,
        MergeField::LastName,
        MergeField::FullName,
        MergeField::Company,
        MergeField::UnsubscribeUrl,
        MergeField::PreferencesUrl,
        MergeField::ConfirmUrl,
        MergeField::ReceiptId,
        MergeField::ConsentAddress,
        MergeField::ConsentTopics,
        MergeField::ConsentWording,
        MergeField::ConsentGivenAt,
        MergeField::ConsentConfirmedAt,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MergeField::FirstName => "first_name",
            MergeField::LastName => "last_name",
            MergeField::FullName => "full_name",
            MergeField::Company => "company",
            MergeField::UnsubscribeUrl => "unsubscribe_url",
            MergeField::PreferencesUrl => "preferences_url",
            MergeField::ConfirmUrl => "confirm_url",
            MergeField::ReceiptId => "receipt_id",
            MergeField::ConsentAddress => "consent_address",
            MergeField::ConsentTopics => "consent_topics",
            MergeField::ConsentWording => "consent_wording",
            MergeField::ConsentGivenAt => "consent_given_at",
            MergeField::ConsentConfirmedAt => "consent_confirmed_at",
        }
    }

    /// Links Assent makes for every recipient: never missing, so never given a default.
    pub fn is_link(self) -> bool {
        matches!(
            self,
            MergeField::UnsubscribeUrl | MergeField::PreferencesUrl | MergeField::ConfirmUrl
        )
    }

    /// Fields only the messages of a sign-up form have (its confirmation, its receipt): a
    /// campaign written by staff cannot use them, and they take no default.
    pub fn is_signup_only(self) -> bool {
        matches!(
            self,
            MergeField::ConfirmUrl
                | MergeField::ReceiptId
                | MergeField::ConsentAddress
                | MergeField::ConsentTopics
                | MergeField::ConsentWording
                | MergeField::ConsentGivenAt
                | MergeField::ConsentConfirmedAt
        )
    }
}

/// Why a template cannot be used, and where (a character offset from its start).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at character {at}: {problem}")]
pub struct TemplateError {
    pub at: usize,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field {
        field: MergeField,
        default: Option<String>,
    },
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// One recipient's values. Links are always there; the rest may be missing.
#[derive(Debug, Clone, Default)]
pub struct Values<'a> {
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub company: Option<&'a str>,
    pub unsubscribe_url: &'a str,
    pub preferences_url: &'a str,
    /// Only for a sign-up's confirmation: anywhere else the field is missing.
    pub confirm_url: Option<&'a str>,
    /// Only for a sign-up's consent receipt: anywhere else its fields are missing.
    pub consent: Option<&'a ConsentValues>,
}

/// What a consent receipt states, in words.
#[derive(Debug, Clone, Default)]
pub struct ConsentValues {
    pub receipt_id: String,
    pub address: String,
    pub topics: String,
    pub wording: String,
    pub given_at: String,
    pub confirmed_at: String,
}

impl Values<'_> {
    fn get(&self, field: MergeField) -> Option<String> {
        fn present(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|v| !v.is_empty())
        }
        match field {
            MergeField::FirstName => present(self.first_name).map(str::to_owned),
            MergeField::LastName => present(self.last_name).map(str::to_owned),
            MergeField::FullName => {
                let parts: Vec<&str> = [self.first_name, self.last_name]
                    .into_iter()
                    .filter_map(present)
                    .collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            }
            MergeField::Company => present(self.company).map(str::to_owned),
            MergeField::UnsubscribeUrl => Some(self.unsubscribe_url.to_owned()),
            MergeField::PreferencesUrl => Some(self.preferences_url.to_owned()),
            MergeField::ConfirmUrl => self.confirm_url.map(str::to_owned),
            MergeField::ReceiptId => self.consent.map(|c| c.receipt_id.clone()),
            MergeField::ConsentAddress => self.consent.map(|c| c.address.clone()),
            MergeField::ConsentTopics => self.consent.map(|c| c.topics.clone()),
            MergeField::ConsentWording => self.consent.map(|c| c.wording.clone()),
            MergeField::ConsentGivenAt => self.consent.map(|c| c.given_at.clone()),
            MergeField::ConsentConfirmedAt => self.consent.map(|c| c.confirmed_at.clone()),
        }
    }
}

/// The longest default a field may have.
const DEFAULT_MAX: usize = 200;

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let at = offset + rest[..open].chars().count();
            let inside = &rest[open + 2..];
            let close = inside.find("}}").ok_or_else(|| TemplateError {
                at,
                problem: "a merge field opened with {{ is not closed with }}".into(),
            })?;
            let (name, default) = match inside[..close].split_once('|') {
                Some((name, default)) => (name.trim(), Some(default.trim())),
                None => (inside[..close].trim(), None),
            };
            let field = MergeField::ALL
                .into_iter()
                .find(|f| f.name() == name)
                .ok_or_else(|| TemplateError {
                    at,
                    problem: format!(
                        "{{{{{}}}}} is not a merge field (the fields are {})",
                        truncated(name),
                        MergeField::ALL.map(MergeField::name).join(", ")
                    ),
                })?;
            let default = match default {
                Some(_) if field.is_link() || field.is_signup_only() => {
                    return Err(TemplateError {
                        at,
                        problem: format!(
                            "{{{{{}}}}} is always there and takes no default",
                            field.name()
                        ),
                    })
                }
                Some(d) if d.is_empty() || d.chars().count() > DEFAULT_MAX || d.contains('{') => {
                    return Err(TemplateError {
                        at,
                        problem: format!(
                            "the default of {{{{{}}}}} must be 1 to {DEFAULT_MAX} characters without braces",
                            field.name()
                        ),
                    })
                }
                other => other.map(str::to_owned),
            };
            pieces.push(Piece::Field { field, default });
            let consumed = open + 2 + close + 2;
            offset += rest[..consumed].chars().count();
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Template { pieces })
    }

    /// Whether the template names `field`.
    pub fn uses(&self, field: MergeField) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Field { field: f, .. } if *f == field))
    }

    /// The fields used without a default that `values` lacks.
    pub fn missing(&self, values: &Values<'_>) -> Vec<MergeField> {
        let mut missing: Vec<MergeField> = self
            .pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Field {
                    field,
                    default: None,
                } if values.get(*field).is_none() => Some(*field),
                _ => None,
            })
            .collect();
        missing.sort();
        missing.dedup();
        missing
    }

    /// The template's literal text (the merge fields left out), to look for phrases in.
    pub fn literal_text(&self) -> String {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.as_str(),
                Piece::Field { .. } => " ",
            })
            .collect()
    }

    /// Fills the fields in, each value passed through `escape`; `None` when a value is missing.
    fn fill_with(&self, values: &Values<'_>, escape: impl Fn(&str) -> String) -> Option<String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field { field, default } => {
                    let value = values.get(*field).or_else(|| default.clone())?;
                    out.push_str(&escape(&value));
                }
            }
        }
        Some(out)
    }

    /// Plain text (a subject, an SMS), filled in; `None` when a value is missing.
    pub fn fill(&self, values: &Values<'_>) -> Option<String> {
        self.fill_with(values, |v| v.to_owned())
    }

    /// An email body filled in as Markdown, each value escaped; `None` when a value is missing.
    pub fn markdown(&self, values: &Values<'_>) -> Option<String> {
        self.fill_with(values, markdown_escape)
    }

    /// An email body filled in: its HTML and its plain text; `None` when a value is missing.
    pub fn email(&self, values: &Values<'_>) -> Option<(String, String)> {
        self.markdown(values).map(|markdown| render(&markdown))
    }
}

fn truncated(text: &str) -> String {
    text.chars().take(40).collect()
}

/// Every ASCII punctuation character backslash-escaped (CommonMark 2.4): the value is read as
/// the text it is.
pub fn markdown_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
        }
        // A line break in a value would start a new block: it is a space.
        out.push(if c == '\n' || c == '\r' { ' ' } else { c });
    }
    out
}

/// The HTML of a Markdown body, raw HTML shown as text, and its plain text.
pub fn render(markdown: &str) -> (String, String) {
    // A link whose address is not http, https or mailto (`javascript:`, `data:`) keeps its text
    // and loses the link; links nest no deeper than CommonMark allows, so a stack tells which
    // end is whose.
    let mut kept = Vec::new();
    let events: Vec<Event<'_>> = Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH)
        .filter_map(|event| match event {
            Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
            Event::Start(Tag::Link { ref dest_url, .. }) => {
                let safe = safe_link(dest_url);
                kept.push(safe);
                safe.then_some(event)
            }
            Event::End(TagEnd::Link) => kept.pop().unwrap_or(false).then_some(event),
            other => Some(other),
        })
        .collect();
    let mut html_out = String::new();
    html::push_html(&mut html_out, events.iter().cloned());
    (html_out, plain_text(&events))
}

/// Whether a link may point at `url`: the web or an email address.
fn safe_link(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    ["https://", "http://", "mailto:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
}

/// The plain-text part: paragraphs apart, list items with a dash, a link followed by its
/// address in angle brackets (unless the text is the address).
fn plain_text(events: &[Event<'_>]) -> String {
    let mut out = String::new();
    let mut links: Vec<(String, usize)> = Vec::new();
    let mut lists: Vec<Option<u64>> = Vec::new();
    for event in events {
        match event {
            Event::Text(t) | Event::Code(t) => out.push_str(t),
            Event::SoftBreak => out.push(' '),
            Event::HardBreak => out.push('\n'),
            Event::Rule => out.push_str("----\n\n"),
            Event::Start(Tag::Link { dest_url, .. }) => {
                links.push((dest_url.to_string(), out.len()));
            }
            Event::End(TagEnd::Link) => {
                if let Some((url, start)) = links.pop() {
                    if out[start..].trim() != url {
                        out.push_str(&format!(" <{url}>"));
                    }
                }
            }
            Event::Start(Tag::List(first)) => lists.push(*first),
            Event::End(TagEnd::List(_)) => {
                lists.pop();
                if lists.is_empty() {
                    out.push('\n');
                }
            }
            Event::Start(Tag::Item) => {
                let depth = lists.len().saturating_sub(1);
                out.push_str(&"  ".repeat(depth));
                match lists.last_mut() {
                    Some(Some(n)) => {
                        out.push_str(&format!("{n}. "));
                        *n += 1;
                    }
                    _ => out.push_str("- "),
                }
            }
            Event::End(TagEnd::Item) if !out.ends_with('\n') => out.push('\n'),
            Event::End(TagEnd::Paragraph) if lists.is_empty() => out.push_str("\n\n"),
            Event::End(TagEnd::Paragraph) => {}
            Event::End(TagEnd::Heading(_)) | Event::End(TagEnd::CodeBlock) => out.push_str("\n\n"),
            Event::End(TagEnd::HtmlBlock) => {
                out.truncate(out.trim_end_matches('\n').len());
                out.push_str("\n\n");
            }
            _ => {}
        }
    }
    out.trim_end().to_owned() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jane() -> Values<'static> {
        Values {
            first_name: Some("Jane"),
            last_name: Some("Doe"),
            company: None,
            unsubscribe_url: "https://assent.example.org/u/t0k3n",
            preferences_url: "https://assent.example.org/u/t0k3n",
            confirm_url: None,
            consent: None,
        }
    }

    #[test]
    fn fields_fill_in_with_their_defaults_and_a_missing_one_is_named() {
        let t = Template::parse("Dear {{ first_name }}, news for {{company|your team}}.").unwrap();
        assert_eq!(
            t.fill(&jane()).as_deref(),
            Some("Dear Jane, news for your team.")
        );
        let no_name = Values {
            first_name: Some("  "),
            ..jane()
        };
        assert_eq!(t.fill(&no_name), None, "never \"Dear ,\"");
        assert_eq!(t.missing(&no_name), [MergeField::FirstName]);
        let full = Template::parse("{{full_name}}").unwrap();
        assert_eq!(
            full.fill(&Values {
                last_name: None,
                ..jane()
            })
            .as_deref(),
            Some("Jane")
        );
    }

    #[test]
    fn unknown_fields_unclosed_braces_and_defaulted_links_are_refused_with_their_place() {
        let error = Template::parse("Hello {{firstname}}").unwrap_err();
        assert_eq!(error.at, 6);
        assert!(
            error
                .problem
                .starts_with("{{firstname}} is not a merge field (the fields are first_name, "),
            "{error}"
        );
        assert_eq!(Template::parse("Hé {{first_name").unwrap_err().at, 3);
        assert!(Template::parse("{{unsubscribe_url|here}}")
            .unwrap_err()
            .problem
            .contains("takes no default"));
        assert!(Template::parse("{{first_name|}}").is_err());
        assert_eq!(
            Template::parse("no fields, {single braces}")
                .unwrap()
                .fill(&jane())
                .as_deref(),
            Some("no fields, {single braces}")
        );
    }

    #[test]
    fn merge_values_are_text_never_markup_in_either_part() {
        let t = Template::parse(
            "Dear {{first_name}},\n\nYour *boiler* is due. [Book a visit](https://harbour-heating.example/book)\n\n<script>alert(1)</script>\n\n[Unsubscribe]({{unsubscribe_url}})",
        )
        .unwrap();
        let sly = Values {
            first_name: Some("<b>Jane</b> *[x](https://evil.example)* &amp;\n\n# big"),
            ..jane()
        };
        let (html, text) = t.email(&sly).unwrap();
        assert!(
            html.contains(
                "<p>Dear &lt;b&gt;Jane&lt;/b&gt; *[x](https://evil.example)* &amp;amp;  # big,</p>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<em>boiler</em>"),
            "the author's Markdown is kept: {html}"
        );
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "raw HTML is text: {html}"
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(
            html.contains("<a href=\"https://assent.example.org/u/t0k3n\">Unsubscribe</a>"),
            "{html}"
        );
        assert!(!html.contains("href=\"https://evil.example"), "{html}");
        assert_eq!(
            text,
            "Dear <b>Jane</b> *[x](https://evil.example)* &amp;  # big,\n\nYour boiler is due. Book a visit <https://harbour-heating.example/book>\n\n<script>alert(1)</script>\n\nUnsubscribe <https://assent.example.org/u/t0k3n>\n"
        );
    }

    #[test]
    fn a_link_to_anything_but_the_web_or_a_mailbox_keeps_only_its_text() {
        let t = Template::parse(
            "[Visit]({{company}}) and [Mail us](mailto:hello@harbour-heating.example)",
        )
        .unwrap();
        let sly = Values {
            company: Some("javascript:alert(1)"),
            ..jane()
        };
        let (html, text) = t.email(&sly).unwrap();
        assert!(!html.contains("javascript"), "{html}");
        assert!(
            html.contains("Visit and <a href=\"mailto:hello@harbour-heating.example\">Mail us</a>"),
            "{html}"
        );
        assert_eq!(
            text,
            "Visit and Mail us <mailto:hello@harbour-heating.example>\n"
        );
        let (html, _) = render("[x](data:text/html,hi) [y](JavaScript:alert(2))");
        assert!(!html.contains("href"), "{html}");
    }

    #[test]
    fn lists_and_bare_links_read_well_as_plain_text() {
        let (_, text) = render("Three reasons:\n\n1. Warm\n2. Cheap\n\n- one\n- two\n\n[https://a.example](https://a.example)");
        assert_eq!(
            text,
            "Three reasons:\n\n1. Warm\n2. Cheap\n\n- one\n- two\n\nhttps://a.example\n"
        );
    }
}
