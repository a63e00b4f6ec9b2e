//! Reports that come back about messages already sent, forwarded by the organisation's mail
//! system: delivery status notifications (RFC 3464, `multipart/report;
//! report-type=delivery-status`) and complaints (ARF feedback reports, RFC 5965,
//! `report-type=feedback-report`). A report names the message it is about by the original
//! message's `Message-ID` (Assent's derive from the campaign and the contact), quoted in the
//! report's headers part, or by the tag of the return path it was sent to (`mail_return_path`:
//! `bounces+<tag>@domain`, the tag being the outbox row's id).
//!
//! Only what the reports' fields say is read (the report parts are 7-bit text by their RFCs); a
//! report this does not recognise is `Other`, and acted on by no one.

/// What a report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportKind {
    /// The mailbox refused the message for good (`Action: failed` with a status that refuses
    /// the mailbox: `5.1.x`, `5.2.1`).
    HardBounce { status: String },
    /// A complaint: the person marked the message as unwanted (`Feedback-Type:`).
    Complaint { feedback_type: String },
    /// Anything else: a delay, a success, a refusal of the message rather than the mailbox.
    Other,
}

/// A report, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub kind: ReportKind,
    /// Every `Message-ID` the report holds, without angle brackets (its own among them).
    pub message_ids: Vec<String>,
    /// The tags of the return path the message went out with (`bounces+<tag>@`), where the
    /// report came back to one.
    pub tags: Vec<String>,
}

/// The fields of a message's header lines, unfolded, lower-cased names (every part's headers
/// and a report's field blocks alike: they share the syntax).
fn fields(raw: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let unfolded = text.replace("\n ", " ").replace("\n\t", " ");
    unfolded
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            let name = name.trim();
            (!name.is_empty() && !name.contains(' '))
                .then(|| (name.to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect()
}

/// The tag of `address` when it is `<local>+<tag>@...` with `local` the return path's own.
fn tag_in(value: &str, local: &str) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    let start = lower.find(&format!("{local}+"))? + local.len() + 1;
    let tag: String = lower[start..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    (tag.len() == 32 && lower[start + 32..].starts_with('@')).then_some(tag)
}

/// Reads `raw`, a whole report as it was received. `return_path` is the configured return
/// path's local part (`bounces` of `bounces@example.org`), whose tags name messages.
pub fn read(raw: &[u8], return_path: Option<&str>) -> Report {
    let fields = fields(raw);
    let value = |name: &'static str| {
        fields
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let message_ids = value("message-id")
        .map(|v| {
            v.trim_matches(|c| c == '<' || c == '>' || c == ' ')
                .to_owned()
        })
        .filter(|v| !v.is_empty())
        .collect();
    let mut tags: Vec<String> = Vec::new();
    if let Some(local) = return_path.map(str::to_ascii_lowercase) {
        for name in [
            "to",
            "delivered-to",
            "x-original-to",
            "envelope-to",
            "return-path",
        ] {
            for v in value(name) {
                if let Some(tag) = tag_in(v, &local) {
                    if !tags.contains(&tag) {
                        tags.push(tag);
                    }
                }
            }
        }
    }
    let kind = if let Some(feedback_type) = value("feedback-type").next() {
        ReportKind::Complaint {
            feedback_type: feedback_type.to_ascii_lowercase(),
        }
    } else {
        let failed = value("action").any(|a| a.eq_ignore_ascii_case("failed"));
        let refused = value("status")
            .filter_map(|s| s.split_whitespace().next())
            .find(|s| super::refuses_the_mailbox(s));
        match (failed, refused) {
            (true, Some(status)) => ReportKind::HardBounce {
                status: status.to_owned(),
            },
            _ => ReportKind::Other,
        }
    };
    Report {
        kind,
        message_ids,
        tags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str =
        "0193a1b2c3d4e5f60718293a4b5c6d7e.0193f1e2d3c4b5a69788796a5b4c3d2e@harbour-heating.example";

    /// A DSN as Postfix writes one: the human part, the delivery-status part, the original's
    /// headers.
    fn dsn(action: &str, status: &str) -> String {
        format!(
            "Return-Path: <>\r\nDelivered-To: bounces+0193aabbccddeeff00112233445566aa@harbour-heating.example\r\n\
             From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\nSubject: Undelivered Mail Returned to Sender\r\n\
             Message-ID: <20261204.ABC@mx.example.net>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"B\"\r\n\r\n\
             --B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not be delivered.\r\n\r\n\
             --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
             Final-Recipient: rfc822; jane.doe@example.org\r\nOriginal-Recipient: rfc822;jane.doe@example.org\r\n\
             Action: {action}\r\nStatus: {status}\r\nDiagnostic-Code: smtp; 550 {status} User unknown\r\n\r\n\
             --B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: news@harbour-heating.example\r\n\
             To: jane.doe@example.org\r\nMessage-ID:\r\n <{ORIGINAL}>\r\nSubject: Winter boiler check\r\n\r\n--B--\r\n"
        )
    }

    #[test]
    fn a_failed_delivery_to_a_bad_mailbox_is_a_hard_bounce_naming_the_original() {
        let report = read(dsn("failed", "5.1.1").as_bytes(), Some("bounces"));
        assert_eq!(
            report.kind,
            ReportKind::HardBounce {
                status: "5.1.1".into()
            }
        );
        assert!(
            report.message_ids.contains(&ORIGINAL.to_owned()),
            "{report:?}"
        );
        assert_eq!(
            report.tags,
            vec!["0193aabbccddeeff00112233445566aa".to_owned()]
        );
        assert!(read(dsn("failed", "5.1.1").as_bytes(), None)
            .tags
            .is_empty());
    }

    #[test]
    fn a_delay_a_success_or_a_refusal_of_the_message_is_no_bounce_of_the_mailbox() {
        for (action, status) in [
            ("delayed", "4.4.1"),
            ("delivered", "2.0.0"),
            ("failed", "5.7.1"),
            ("failed", "4.2.2"),
        ] {
            assert_eq!(
                read(dsn(action, status).as_bytes(), None).kind,
                ReportKind::Other,
                "{action} {status}"
            );
        }
    }

    #[test]
    fn a_feedback_report_is_a_complaint() {
        let arf = format!(
            "From: feedback@mailbox.example\r\nMessage-ID: <arf1@mailbox.example>\r\n\
             Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\r\n\
             --F\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n\
             --F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: Abuse\r\nVersion: 1\r\n\r\n\
             --F\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <{ORIGINAL}>\r\nSubject: Winter boiler check\r\n\r\nHello\r\n--F--\r\n"
        );
        let report = read(arf.as_bytes(), None);
        assert_eq!(
            report.kind,
            ReportKind::Complaint {
                feedback_type: "abuse".into()
            }
        );
        assert!(report.message_ids.contains(&ORIGINAL.to_owned()));
    }
}
